package dev.kiln.ext4;

/**
 * Directory index (htree) name hashes, as specified by the kernel's {@code fs/ext4/hash.c} and
 * described in {@code Documentation/filesystems/ext4/directory.rst}: legacy (0), half MD4 (1),
 * TEA (2); versions 3..5 are the same with the name's bytes taken as unsigned.
 */
final class DxHash {
    public static final int LEGACY = 0;
    public static final int HALF_MD4 = 1;
    public static final int TEA = 2;
    public static final int LEGACY_UNSIGNED = 3;
    public static final int HALF_MD4_UNSIGNED = 4;
    public static final int TEA_UNSIGNED = 5;

    private static final int K2 = 013240474631;
    private static final int K3 = 015666365641;
    private static final int TEA_DELTA = 0x9E3779B9;

    private DxHash() {}

    /** The superblock's 16-byte {@code s_hash_seed} as the four words the hashes start from. */
    static int[] seed(byte[] sixteen) {
        int[] seed = new int[4];
        for (int i = 0; i < 4; i++) {
            seed[i] = (int) Le.get32(sixteen, i * 4);
        }
        return seed;
    }

    /** Returns {major, minor} as unsigned 32-bit values in longs. */
    public static long[] hash(byte[] name, int off, int len, int version, int[] seed) {
        int[] buf = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
        if (seed != null && (seed[0] | seed[1] | seed[2] | seed[3]) != 0) {
            System.arraycopy(seed, 0, buf, 0, 4);
        }
        boolean unsigned = version >= LEGACY_UNSIGNED;
        int major;
        int minor;
        switch (version) {
            case LEGACY, LEGACY_UNSIGNED -> {
                major = legacy(name, off, len, unsigned);
                minor = 0;
            }
            case HALF_MD4, HALF_MD4_UNSIGNED -> {
                int[] in = new int[8];
                int p = off;
                int remaining = len;
                while (remaining > 0) {
                    toHashBuf(name, p, remaining, in, 8, unsigned);
                    halfMd4(buf, in);
                    remaining -= 32;
                    p += 32;
                }
                major = buf[1];
                minor = buf[2];
            }
            case TEA, TEA_UNSIGNED -> {
                int[] in = new int[4];
                int p = off;
                int remaining = len;
                while (remaining > 0) {
                    toHashBuf(name, p, remaining, in, 4, unsigned);
                    tea(buf, in);
                    remaining -= 16;
                    p += 16;
                }
                major = buf[0];
                minor = buf[1];
            }
            default -> throw new IllegalArgumentException("unknown directory hash version " + version);
        }
        major &= ~1;
        if (major == (0x7FFFFFFF << 1)) {
            major = (0x7FFFFFFF - 1) << 1;
        }
        return new long[] {major & 0xFFFFFFFFL, minor & 0xFFFFFFFFL};
    }

    private static int legacy(byte[] name, int off, int len, boolean unsigned) {
        int hash0 = 0x12a3fe2d;
        int hash1 = 0x37abe8f9;
        for (int i = 0; i < len; i++) {
            int c = unsigned ? name[off + i] & 0xFF : name[off + i];
            int hash = hash1 + (hash0 ^ (c * 7152373));
            if ((hash & 0x80000000) != 0) {
                hash -= 0x7fffffff;
            }
            hash1 = hash0;
            hash0 = hash;
        }
        return hash0 << 1;
    }

    /** Packs up to num*4 name bytes into words, padding with a length-derived pattern. */
    private static void toHashBuf(byte[] msg, int off, int len, int[] out, int num, boolean unsigned) {
        int pad = len | (len << 8);
        pad |= pad << 16;
        int val = pad;
        int n = Math.min(Math.max(len, 0), num * 4);
        int o = 0;
        int words = num;
        for (int i = 0; i < n; i++) {
            int c = unsigned ? msg[off + i] & 0xFF : msg[off + i];
            val = c + (val << 8);
            if ((i % 4) == 3) {
                out[o++] = val;
                val = pad;
                words--;
            }
        }
        if (--words >= 0) {
            out[o++] = val;
        }
        while (--words >= 0) {
            out[o++] = pad;
        }
    }

    private static int f(int x, int y, int z) {
        return z ^ (x & (y ^ z));
    }

    private static int g(int x, int y, int z) {
        return (x & y) + ((x ^ y) & z);
    }

    private static int h(int x, int y, int z) {
        return x ^ y ^ z;
    }

    private static void halfMd4(int[] buf, int[] in) {
        int a = buf[0];
        int b = buf[1];
        int c = buf[2];
        int d = buf[3];
        a = Integer.rotateLeft(a + f(b, c, d) + in[0], 3);
        d = Integer.rotateLeft(d + f(a, b, c) + in[1], 7);
        c = Integer.rotateLeft(c + f(d, a, b) + in[2], 11);
        b = Integer.rotateLeft(b + f(c, d, a) + in[3], 19);
        a = Integer.rotateLeft(a + f(b, c, d) + in[4], 3);
        d = Integer.rotateLeft(d + f(a, b, c) + in[5], 7);
        c = Integer.rotateLeft(c + f(d, a, b) + in[6], 11);
        b = Integer.rotateLeft(b + f(c, d, a) + in[7], 19);

        a = Integer.rotateLeft(a + g(b, c, d) + in[1] + K2, 3);
        d = Integer.rotateLeft(d + g(a, b, c) + in[3] + K2, 5);
        c = Integer.rotateLeft(c + g(d, a, b) + in[5] + K2, 9);
        b = Integer.rotateLeft(b + g(c, d, a) + in[7] + K2, 13);
        a = Integer.rotateLeft(a + g(b, c, d) + in[0] + K2, 3);
        d = Integer.rotateLeft(d + g(a, b, c) + in[2] + K2, 5);
        c = Integer.rotateLeft(c + g(d, a, b) + in[4] + K2, 9);
        b = Integer.rotateLeft(b + g(c, d, a) + in[6] + K2, 13);

        a = Integer.rotateLeft(a + h(b, c, d) + in[3] + K3, 3);
        d = Integer.rotateLeft(d + h(a, b, c) + in[7] + K3, 9);
        c = Integer.rotateLeft(c + h(d, a, b) + in[2] + K3, 11);
        b = Integer.rotateLeft(b + h(c, d, a) + in[6] + K3, 15);
        a = Integer.rotateLeft(a + h(b, c, d) + in[1] + K3, 3);
        d = Integer.rotateLeft(d + h(a, b, c) + in[5] + K3, 9);
        c = Integer.rotateLeft(c + h(d, a, b) + in[0] + K3, 11);
        b = Integer.rotateLeft(b + h(c, d, a) + in[4] + K3, 15);

        buf[0] += a;
        buf[1] += b;
        buf[2] += c;
        buf[3] += d;
    }

    private static void tea(int[] buf, int[] in) {
        int sum = 0;
        int b0 = buf[0];
        int b1 = buf[1];
        int a = in[0];
        int b = in[1];
        int c = in[2];
        int d = in[3];
        for (int n = 0; n < 16; n++) {
            sum += TEA_DELTA;
            b0 += ((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >>> 5) + b);
            b1 += ((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >>> 5) + d);
        }
        buf[0] += b0;
        buf[1] += b1;
    }
}
