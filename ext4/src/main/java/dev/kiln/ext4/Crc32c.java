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

    /** A checksum chained from the file system seed {@code raw(~0, uuid)}. */
    static Crc32c seeded(byte[] uuid) {
        return new Crc32c().update(uuid);
    }

    /** A checksum chained from an inode's seed: fs seed, then le32 inode number and generation. */
    static Crc32c inodeSeeded(byte[] uuid, long ino, long generation) {
        return seeded(uuid).updateLe32(ino).updateLe32(generation);
    }
}
