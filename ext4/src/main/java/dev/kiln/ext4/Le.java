package dev.kiln.ext4;

/** Little-endian field access on byte arrays; ext4 is little-endian everywhere but JBD2. */
final class Le {
    private Le() {}

    static void put8(byte[] b, int off, int v) {
        b[off] = (byte) v;
    }

    static void put16(byte[] b, int off, int v) {
        b[off] = (byte) v;
        b[off + 1] = (byte) (v >>> 8);
    }

    static void put32(byte[] b, int off, long v) {
        b[off] = (byte) v;
        b[off + 1] = (byte) (v >>> 8);
        b[off + 2] = (byte) (v >>> 16);
        b[off + 3] = (byte) (v >>> 24);
    }

    static void put64(byte[] b, int off, long v) {
        put32(b, off, v);
        put32(b, off + 4, v >>> 32);
    }

    static int get8(byte[] b, int off) {
        return b[off] & 0xFF;
    }

    static int get16(byte[] b, int off) {
        return (b[off] & 0xFF) | (b[off + 1] & 0xFF) << 8;
    }

    static long get32(byte[] b, int off) {
        return ((b[off] & 0xFFL) | (b[off + 1] & 0xFFL) << 8 | (b[off + 2] & 0xFFL) << 16
                | (b[off + 3] & 0xFFL) << 24);
    }

    static long get64(byte[] b, int off) {
        return get32(b, off) | get32(b, off + 4) << 32;
    }

    static void putBe32(byte[] b, int off, long v) {
        b[off] = (byte) (v >>> 24);
        b[off + 1] = (byte) (v >>> 16);
        b[off + 2] = (byte) (v >>> 8);
        b[off + 3] = (byte) v;
    }

    static long getBe32(byte[] b, int off) {
        return ((b[off] & 0xFFL) << 24 | (b[off + 1] & 0xFFL) << 16 | (b[off + 2] & 0xFFL) << 8
                | (b[off + 3] & 0xFFL));
    }
}
