/**
 * WinZip AES-256 (AE-2) entry encryption with node:crypto only (so the core runs on Deno too): PBKDF2-HMAC-SHA1
 * keys from the password and a per-entry salt, AES-256 in WinZip's counter mode, HMAC-SHA1 over the ciphertext.
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
/** Keystream made at a time: one OpenSSL call per 4096 counter blocks. */
const KEYSTREAM_BATCH = 64 * 1024;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

interface AesKeys {
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
 * 16-byte blocks (node's 'aes-256-ctr' counts big-endian, so it cannot be used). `apply` XORs it over data
 * into a new buffer, carrying its position across calls of any length.
 */
class WinZipCtr {
  readonly #ecb: Cipheriv;
  readonly #words = [1, 0, 0, 0];
  readonly #counters = new Uint8Array(KEYSTREAM_BATCH);
  readonly #keystream = new Uint8Array(KEYSTREAM_BATCH);
  #used = KEYSTREAM_BATCH;

  constructor(key: Uint8Array) {
    this.#ecb = createCipheriv("aes-256-ecb", key, null).setAutoPadding(false);
  }

  apply(data: Uint8Array): Uint8Array {
    // Placed so its bytes share the keystream's alignment mod 4: whole 32-bit words can be XORed.
    const shift = this.#used & 3;
    const out = new Uint8Array(new ArrayBuffer(data.length + shift), shift, data.length);
    out.set(data);
    for (let at = 0; at < data.length; ) {
      if (this.#used === KEYSTREAM_BATCH) this.#refill();
      const n = Math.min(data.length - at, KEYSTREAM_BATCH - this.#used);
      xorInto(out, at, this.#keystream, this.#used, n);
      at += n;
      this.#used += n;
    }
    return out;
  }

  #refill(): void {
    const w = this.#words;
    if (LITTLE_ENDIAN) {
      // Typed-array stores are the host's order: little-endian here, and 3× faster than a DataView's.
      const words = new Uint32Array(this.#counters.buffer);
      for (let at = 0; at < words.length; at += 4) {
        words[at] = w[0]!;
        words[at + 1] = w[1]!;
        words[at + 2] = w[2]!;
        words[at + 3] = w[3]!;
        for (let i = 0; i < 4 && (w[i] = (w[i]! + 1) >>> 0) === 0; i++);
      }
    } else {
      const view = new DataView(this.#counters.buffer);
      for (let at = 0; at < KEYSTREAM_BATCH; at += 16) {
        for (let i = 0; i < 4; i++) view.setUint32(at + 4 * i, w[i]!, true);
        for (let i = 0; i < 4 && (w[i] = (w[i]! + 1) >>> 0) === 0; i++);
      }
    }
    this.#keystream.set(this.#ecb.update(this.#counters));
    this.#used = 0;
  }
}

/** out[outAt..+n] ^= ks[ksAt..+n], by 32-bit words where both sides align alike. */
function xorInto(out: Uint8Array, outAt: number, ks: Uint8Array, ksAt: number, n: number): void {
  let i = 0;
  const alignment = (out.byteOffset + outAt) & 3;
  if (alignment === ((ks.byteOffset + ksAt) & 3)) {
    for (const head = Math.min(n, (4 - alignment) & 3); i < head; i++) out[outAt + i]! ^= ks[ksAt + i]!;
    const words = (n - i) >>> 2;
    if (words > 0) {
      const o = new Uint32Array(out.buffer, out.byteOffset + outAt + i, words);
      const k = new Uint32Array(ks.buffer, ks.byteOffset + ksAt + i, words);
      for (let w = 0; w < words; w++) o[w]! ^= k[w]!;
      i += words * 4;
    }
  }
  for (; i < n; i++) out[outAt + i]! ^= ks[ksAt + i]!;
}

/** One entry's encryption: `header()` first, then `update` over its data in order, then `final()`. */
export class AesEntryEncryptor {
  readonly #header: Uint8Array;
  readonly #ctr: WinZipCtr;
  readonly #hmac: Hmac;

  private constructor(salt: Uint8Array, keys: AesKeys) {
    this.#header = Buffer.concat([salt, keys.verifier]);
    this.#ctr = new WinZipCtr(keys.aesKey);
    this.#hmac = createHmac("sha1", keys.hmacKey);
  }

  /** A new random salt and its keys (PBKDF2 on the thread pool). */
  static async create(password: string): Promise<AesEntryEncryptor> {
    const salt = randomBytes(AES_SALT_BYTES);
    return new AesEntryEncryptor(salt, await deriveAesKeys(password, salt));
  }

  /** Salt and password verifier: the first 18 bytes of the entry's data. */
  header(): Uint8Array {
    return this.#header;
  }

  /** The ciphertext of the next plaintext bytes (a new buffer; `plain` is left as it is). */
  update(plain: Uint8Array): Uint8Array {
    const cipher = this.#ctr.apply(plain);
    this.#hmac.update(cipher);
    return cipher;
  }

  /** The authentication code, the entry data's last 10 bytes. */
  final(): Uint8Array {
    return this.#hmac.digest().subarray(0, AES_AUTH_CODE_BYTES);
  }
}

/** One entry's decryption, once its salt and verifier say the password is the one it was written with. */
export class AesEntryDecryptor {
  readonly #ctr: WinZipCtr;
  readonly #hmac: Hmac;

  private constructor(keys: AesKeys) {
    this.#ctr = new WinZipCtr(keys.aesKey);
    this.#hmac = createHmac("sha1", keys.hmacKey);
  }

  /** Undefined when the verifier in `header` (salt + verifier) does not match the password. */
  static async create(password: string, header: Uint8Array): Promise<AesEntryDecryptor | undefined> {
    const keys = await keysIfVerified(password, header);
    return keys && new AesEntryDecryptor(keys);
  }

  update(cipher: Uint8Array): Uint8Array {
    this.#hmac.update(cipher);
    return this.#ctr.apply(cipher);
  }

  /** Whether `authCode` is the one the ciphertext so far was written with. */
  final(authCode: Uint8Array): boolean {
    const expected = this.#hmac.digest().subarray(0, AES_AUTH_CODE_BYTES);
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
