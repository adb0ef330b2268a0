/**
 * The zip format's numbers (PKWARE's APPNOTE.TXT, and WinZip's AES extension) that the writer and the readers'
 * own checks share: record signatures, the local header's fixed size, extra-field ids, flag bits and methods.
 */

export const LOCAL_HEADER_SIGNATURE = 0x04034b50;
export const DATA_DESCRIPTOR_SIGNATURE = 0x08074b50;
export const CENTRAL_HEADER_SIGNATURE = 0x02014b50;
export const END_OF_CENTRAL_SIGNATURE = 0x06054b50;
export const ZIP64_END_OF_CENTRAL_SIGNATURE = 0x06064b50;
export const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;

/** A local header's fixed part, before its name and extra field. */
export const LOCAL_HEADER_BYTES = 30;

export const EXTRA_ZIP64 = 0x0001;
/** WinZip AES's extra field: it holds the entry's actual method. */
export const EXTRA_AES = 0x9901;

/** Bit 0: the entry is encrypted. */
export const FLAG_ENCRYPTED = 0x0001;
/** Bit 3: sizes and CRC follow the data, in a data descriptor. */
export const FLAG_DATA_DESCRIPTOR = 0x0008;
/** Bit 6: PKWARE's strong encryption. */
export const FLAG_STRONG_ENCRYPTION = 0x0040;
/** Bit 11: names are UTF-8. */
export const FLAG_UTF8 = 0x0800;

/** WinZip AES: the method field says 99, the 0x9901 extra field holds the actual method. */
export const METHOD_AES = 99;

/** A 32-bit field's largest value, which stands for "see the zip64 extra field" in sizes and offsets. */
export const MAX32 = 0xffffffff;
