package dev.kiln.ext4;

import java.util.zip.CRC32C;

/**
 * The crc32c that ext4 and JBD2 store: the "raw" Castagnoli CRC without the final inversion,
 * chained from a seed. {@link CRC32C} always starts from ~0 and inverts its result, so a raw
 * CRC seeded with {@code raw(~0, prefix)} equals {@code ~CRC32C(prefix || data)}: every ext4
 * metadata checksum is a chain that starts at ~0 (the file system's seed is itself
 * {@code raw(~0, uuid)}), so we replay the chain's prefix instead of injecting a seed.
 */
final class Crc32c {
    private static final int[] TABLE = new int[256];

    static {
        for (int i = 0; i < 256; i++) {
            int c = i;
            for (int k = 0; k < 8; k++) {
                c = (c & 1) != 0 ? (c >>> 1) ^ 0x82F63B78 : c >>> 1;
            }
            TABLE[i] = c;
        }
    }

    private final CRC32C crc;
    /** Software mode, for a seed stored in the superblock (metadata_csum_seed): the raw state. */
    private int soft;

    Crc32c() {
        this.crc = new CRC32C();
    }

    private Crc32c(long seed) {
        this.crc = null;
        this.soft = (int) seed;
    }

    /** A checksum chained from an explicit raw seed (s_checksum_seed). */
    static Crc32c fromSeed(long seed) {
        return new Crc32c(seed);
    }

    Crc32c update(byte[] b, int off, int len) {
        if (crc != null) {
            crc.update(b, off, len);
            return this;
        }
        int c = soft;
        for (int i = off; i < off + len; i++) {
            c = TABLE[(c ^ b[i]) & 0xFF] ^ (c >>> 8);
        }
        soft = c;
        return this;
    }

    Crc32c update(byte[] b) {
        return update(b, 0, b.length);
    }

    Crc32c updateLe32(long v) {
        if (crc != null) { // byte by byte: no array for every inode's seed
            crc.update((int) v);
            crc.update((int) (v >>> 8));
            crc.update((int) (v >>> 16));
            crc.update((int) (v >>> 24));
            return this;
        }
        byte[] b = {(byte) v, (byte) (v >>> 8), (byte) (v >>> 16), (byte) (v >>> 24)};
        return update(b, 0, 4);
    }

    Crc32c updateLe64(long v) {
        updateLe32(v & 0xFFFFFFFFL);
        return updateLe32(v >>> 32);
    }

    Crc32c updateZeros(int n) {
        return update(new byte[n], 0, n);
    }

    /** The raw (non-inverted) value, as ext4 stores it. */
    long raw() {
        return crc != null ? (~crc.getValue()) & 0xFFFFFFFFL : soft & 0xFFFFFFFFL;
    }

    /**
     * Zeros as operators on the CRC register: {@code ZEROS[k]} is the 32x32 bit matrix (one
     * column per int) that advances the register over 2^k zero bytes. The CRC is linear over
     * GF(2), so a run of n zeros is the product of the matrices of n's set bits: a hole of any
     * length costs at most 64 matrix-vector products instead of reading its bytes.
     */
    private static final int[][] ZEROS = new int[64][];

    static {
        int[] bit = new int[32];
        bit[0] = 0x82F63B78;
        for (int i = 1; i < 32; i++) {
            bit[i] = 1 << (i - 1);
        }
        int[] m = bit;
        for (int i = 0; i < 3; i++) {
            m = square(m);
        }
        ZEROS[0] = m;
        for (int k = 1; k < 64; k++) {
            ZEROS[k] = square(ZEROS[k - 1]);
        }
    }

    private static int times(int[] m, int v) {
        int r = 0;
        for (int i = 0; v != 0; i++, v >>>= 1) {
            if ((v & 1) != 0) {
                r ^= m[i];
            }
        }
        return r;
    }

    private static int[] square(int[] m) {
        int[] r = new int[32];
        for (int i = 0; i < 32; i++) {
            r[i] = times(m, m[i]);
        }
        return r;
    }

    /** The register after {@code n} zero bytes, from {@code register}. */
    private static int advance(int register, long n) {
        int r = register;
        for (int k = 0; n != 0; k++, n >>>= 1) {
            if ((n & 1) != 0) {
                r = times(ZEROS[k], r);
            }
        }
        return r;
    }

    /**
     * {@link CRC32C}'s value for {@code a || b} from its values for {@code a} and {@code b} and
     * {@code b}'s length, reading neither: the file content digest runs over regions read and
     * holes never read as if it had read the whole file.
     */
    static long combine(long crcA, long crcB, long lengthB) {
        if (lengthB <= 0) {
            return crcA;
        }
        return (advance((int) crcA, lengthB) ^ (int) crcB) & 0xFFFFFFFFL;
    }

    /** {@link CRC32C}'s value for {@code n} zero bytes, without making them. */
    static long zeros(long n) {
        return n <= 0 ? 0 : ~advance(~0, n) & 0xFFFFFFFFL;
    }

    /** A checksum chained from the file system seed {@code raw(~0, uuid)}. */
    static Crc32c seeded(byte[] uuid) {
        return new Crc32c().update(uuid);
    }

    /** A checksum chained from an inode's seed: fs seed, then le32 inode number and generation. */
    static Crc32c inodeSeeded(byte[] uuid, long ino, long generation) {
        return seeded(uuid).updateLe32(ino).updateLe32(generation);
    }
}
