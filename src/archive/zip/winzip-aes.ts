/**
 * WinZip AES-256 (AE-2) entry encryption with node:crypto only (so the core runs on Deno too): PBKDF2-HMAC-SHA1
 * keys from the password and a per-entry salt, AES-256 in WinZip's counter mode, HMAC-SHA1 over the ciphertext.
 * The cipher's work (`AesCipherCore`) runs wherever an `OpenEntryCipher` puts it: this thread
 * (`inlineEntryCiphers`), or a thread of its own (`engine/aes-worker.ts`).
 */
import { Buffer } from "node:buffer";
import { createCipheriv, createHmac, pbkdf2, randomBytes, timingSafeEqual, type Cipheriv, type Hmac } from "node:crypto";

export const AES_SALT_BYTES = 16;
export const AES_VERIFIER_BYTES = 2;
export const AES_AUTH_CODE_BYTES = 10;
/** What encryption adds to an entry's data: salt and verifier before it, authentication code after. */
export const AES_OVERHEAD = AES_SALT_BYTES + AES_VERIFIER_BYTES + AES_AUTH_CODE_BYTES;
const KEY_BYTES = 32;
const ITERATIONS = 1000;
/**
 * Keystream made at a time: one OpenSSL call per 2048 counter blocks. Small enough to stay in the CPU's cache
 * between being made and being used, large enough that the call's own cost is lost beside the work.
 */
const KEYSTREAM_BATCH = 32 * 1024;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export interface AesKeys {
  aesKey: Buffer;
  hmacKey: Buffer;
  verifier: Buffer;
}

/** PBKDF2-HMAC-SHA1 (1000 rounds) of the UTF-8 password: AES key, HMAC key, 2-byte verifier. On the thread pool. */
export function deriveAesKeys(password: string, salt: Uint8Array): Promise<AesKeys> {
  return new Promise((resolve, reject) => {
    pbkdf2(Buffer.from(password, "utf8"), salt, ITERATIONS, 2 * KEY_BYTES + AES_VERIFIER_BYTES, "sha1", (error, key) => {
      if (error) return reject(error);
      resolve({ aesKey: key.subarray(0, KEY_BYTES), hmacKey: key.subarray(KEY_BYTES, 2 * KEY_BYTES), verifier: key.subarray(2 * KEY_BYTES) });
    });
  });
}

/**
 * WinZip's AES-CTR: the keystream is AES-256 of a 16-byte little-endian counter that starts at 1 and counts
 * 16-byte blocks (node's 'aes-256-ctr' counts big-endian, so it cannot be used). `apply` XORs it over data in
 * place, carrying its position across calls of any length.
 *
 * Why in place, straight from OpenSSL's output: at AES-NI's speed the cost is memory, not arithmetic. A version
 * that copied the data into a new buffer, and the keystream into its own, ran at 270 MB/s inside a backup (fresh
 * pages for every copy) against the 3–5 GB/s of the cipher alone.
 */
export class WinZipCtr {
  readonly #ecb: Cipheriv;
  /** The counter blocks of the next batch, as 32-bit words. */
  readonly #counters = new Uint32Array(KEYSTREAM_BATCH / 4);
  readonly #counterBytes = new Uint8Array(this.#counters.buffer);
  readonly #words = [1, 0, 0, 0];
  #keystream: Uint8Array = new Uint8Array(0);
  #used = 0;

  /** `firstBlock`: the counter of the first block, 1 for every entry (another only to test the carry). */
  constructor(key: Uint8Array, firstBlock = 1) {
    this.#ecb = createCipheriv("aes-256-ecb", key, null).setAutoPadding(false);
    this.#words[0] = firstBlock % 0x1_0000_0000;
    this.#words[1] = Math.floor(firstBlock / 0x1_0000_0000);
  }

  /** XORs the next `data.length` bytes of keystream into `data`, which it changes. */
  apply(data: Uint8Array): void {
    for (let at = 0; at < data.length; ) {
      if (this.#used === this.#keystream.length) this.#refill();
      const n = Math.min(data.length - at, this.#keystream.length - this.#used);
      xorInto(data, at, this.#keystream, this.#used, n);
      at += n;
      this.#used += n;
    }
  }

  #refill(): void {
    const c = this.#counters;
    const w = this.#words;
    const blocks = c.length >>> 2;
    if (LITTLE_ENDIAN && w[0]! + blocks <= 0x1_0000_0000) {
      // Typed-array stores are the host's order, little-endian here; no carry within this batch.
      const [low, w1, w2, w3] = w as [number, number, number, number];
      for (let block = 0, at = 0; block < blocks; block++, at += 4) {
        c[at] = low + block;
        c[at + 1] = w1;
        c[at + 2] = w2;
        c[at + 3] = w3;
      }
      w[0] = (low + blocks) % 0x1_0000_0000;
      if (w[0] === 0) this.#carry();
    } else {
      const view = new DataView(c.buffer);
      for (let at = 0; at < KEYSTREAM_BATCH; at += 16) {
        for (let i = 0; i < 4; i++) view.setUint32(at + 4 * i, w[i]!, true);
        w[0] = (w[0]! + 1) >>> 0;
        if (w[0] === 0) this.#carry();
      }
    }
    this.#keystream = this.#ecb.update(this.#counterBytes);
    this.#used = 0;
  }

  /** The low word wrapped: the carry goes up the higher ones. */
  #carry(): void {
    const w = this.#words;
    for (let i = 1; i < 4 && (w[i] = (w[i]! + 1) >>> 0) === 0; i++);
  }
}

/**
 * data[at..+n] ^= ks[ksAt..+n]: by 32-bit words once `data` is aligned, the keystream's words shifted into place
 * where its alignment differs (a compressed block's length moves the keystream's phase by any amount).
 */
function xorInto(data: Uint8Array, at: number, ks: Uint8Array, ksAt: number, n: number): void {
  let i = Math.min(n, (4 - ((data.byteOffset + at) & 3)) & 3);
  for (let b = 0; b < i; b++) data[at + b]! ^= ks[ksAt + b]!;
  const words = LITTLE_ENDIAN ? (n - i) >>> 2 : 0;
  if (words > 0) {
    const d = new Uint32Array(data.buffer, data.byteOffset + at + i, words);
    const address = ks.byteOffset + ksAt + i;
    const shift = address & 3;
    if (shift === 0) {
      const k = new Uint32Array(ks.buffer, address, words);
      for (let w = 0; w < words; w++) d[w]! ^= k[w]!;
      i += 4 * words;
    } else {
      // Word w of the keystream is the top bytes of aligned word w and the low bytes of word w + 1.
      const base = address - shift;
      const k = new Uint32Array(ks.buffer, base, Math.min(words + 1, (ks.buffer.byteLength - base) >>> 2));
      const right = 8 * shift;
      const left = 32 - right;
      const full = Math.min(words, k.length - 1);
      for (let w = 0; w < full; w++) d[w]! ^= (k[w]! >>> right) | (k[w + 1]! << left);
      i += 4 * full;
    }
  }
  for (; i < n; i++) data[at + i]! ^= ks[ksAt + i]!;
}

/** What an entry's cipher runs on: the AES key for the counter mode, the HMAC key for the authentication code. */
export interface AesCipherKeys {
  aesKey: Uint8Array;
  hmacKey: Uint8Array;
}

export type AesDirection = "encrypt" | "decrypt";

/**
 * AE-2's work on one entry's data, on the calling thread: encrypting, the counter mode then the HMAC over the
 * ciphertext; decrypting, the HMAC over the ciphertext then the counter mode. `apply` changes `data` in place.
 */
export class AesCipherCore {
  readonly #ctr: WinZipCtr;
  readonly #hmac: Hmac;
  readonly #decrypt: boolean;

  constructor(keys: AesCipherKeys, direction: AesDirection) {
    this.#ctr = new WinZipCtr(keys.aesKey);
    this.#hmac = createHmac("sha1", keys.hmacKey);
    this.#decrypt = direction === "decrypt";
  }

  apply(data: Uint8Array): void {
    if (this.#decrypt) this.#hmac.update(data);
    this.#ctr.apply(data);
    if (!this.#decrypt) this.#hmac.update(data);
  }

  /** The authentication code of the ciphertext so far (once: the HMAC ends). */
  code(): Uint8Array {
    return this.#hmac.digest().subarray(0, AES_AUTH_CODE_BYTES);
  }
}

/**
 * One entry's cipher wherever it runs (this thread, or another: `engine/aes-worker.ts`). Calls may overlap: each
 * `update` is applied after every one called before it, and `data` must stay the caller's, untouched, until it
 * resolves (it holds the result then).
 */
export interface EntryCipher {
  update(data: Uint8Array): Promise<void>;
  /** The authentication code, after every update called before it. */
  final(): Promise<Uint8Array>;
}

/** Where entries' ciphers run: the format asks for one per entry and knows nothing of the thread. */
export type OpenEntryCipher = (keys: AesCipherKeys, direction: AesDirection) => EntryCipher;

/** Ciphers on the calling thread. */
export const inlineEntryCiphers: OpenEntryCipher = (keys, direction) => {
  const core = new AesCipherCore(keys, direction);
  return {
    update: async (data) => core.apply(data),
    final: async () => core.code(),
  };
};

/** One entry's encryption: `header()` first, then `update` over its data in order, then `final()`. */
export class AesEntryEncryptor {
  readonly #header: Uint8Array;
  readonly #cipher: EntryCipher;

  private constructor(salt: Uint8Array, keys: AesKeys, ciphers: OpenEntryCipher) {
    this.#header = Buffer.concat([salt, keys.verifier]);
    this.#cipher = ciphers(keys, "encrypt");
  }

  /** A new random salt and its keys (PBKDF2 on the thread pool), its cipher from `ciphers`. */
  static async create(password: string, ciphers: OpenEntryCipher = inlineEntryCiphers): Promise<AesEntryEncryptor> {
    const salt = randomBytes(AES_SALT_BYTES);
    return new AesEntryEncryptor(salt, await deriveAesKeys(password, salt), ciphers);
  }

  /** Salt and password verifier: the first 18 bytes of the entry's data. */
  header(): Uint8Array {
    return this.#header;
  }

  /** Encrypts the next plaintext bytes in place: `data` is the ciphertext once this resolves (`EntryCipher`). */
  update(data: Uint8Array): Promise<void> {
    return this.#cipher.update(data);
  }

  /** The authentication code, the entry data's last 10 bytes. */
  final(): Promise<Uint8Array> {
    return this.#cipher.final();
  }
}

/** One entry's decryption, once its salt and verifier say the password is the one it was written with. */
export class AesEntryDecryptor {
  readonly #cipher: EntryCipher;

  private constructor(keys: AesKeys, ciphers: OpenEntryCipher) {
    this.#cipher = ciphers(keys, "decrypt");
  }

  /** Undefined when the verifier in `header` (salt + verifier) does not match the password. */
  static async create(password: string, header: Uint8Array, ciphers: OpenEntryCipher = inlineEntryCiphers): Promise<AesEntryDecryptor | undefined> {
    const keys = await keysIfVerified(password, header);
    return keys && new AesEntryDecryptor(keys, ciphers);
  }

  /** Decrypts the next ciphertext bytes in place: `data` is the plaintext once this resolves (`EntryCipher`). */
  update(data: Uint8Array): Promise<void> {
    return this.#cipher.update(data);
  }

  /** Whether `authCode` is the one the ciphertext so far was written with. */
  async final(authCode: Uint8Array): Promise<boolean> {
    const expected = await this.#cipher.final();
    return authCode.length === AES_AUTH_CODE_BYTES && timingSafeEqual(expected, authCode);
  }
}

/**
 * Whether `header` (an entry's first 18 bytes: salt + verifier) was written with `password`. A 2-byte check: one
 * wrong password in 65,536 passes it (the authentication code then fails).
 */
export async function aesVerifierMatches(password: string, header: Uint8Array): Promise<boolean> {
  return (await keysIfVerified(password, header)) !== undefined;
}

async function keysIfVerified(password: string, header: Uint8Array): Promise<AesKeys | undefined> {
  if (header.length < AES_SALT_BYTES + AES_VERIFIER_BYTES) return undefined;
  const keys = await deriveAesKeys(password, header.subarray(0, AES_SALT_BYTES));
  const verifier = header.subarray(AES_SALT_BYTES, AES_SALT_BYTES + AES_VERIFIER_BYTES);
  return keys.verifier.equals(verifier) ? keys : undefined;
}
