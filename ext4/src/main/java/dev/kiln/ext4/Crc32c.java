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
    private final CRC32C crc = new CRC32C();

    Crc32c() {}

    Crc32c update(byte[] b, int off, int len) {
        crc.update(b, off, len);
        return this;
    }

    Crc32c update(byte[] b) {
        crc.update(b, 0, b.length);
        return this;
    }

    Crc32c updateLe32(long v) {
        crc.update((int) (v & 0xFF));
        crc.update((int) ((v >>> 8) & 0xFF));
        crc.update((int) ((v >>> 16) & 0xFF));
        crc.update((int) ((v >>> 24) & 0xFF));
        return this;
    }

    Crc32c updateLe64(long v) {
        updateLe32(v & 0xFFFFFFFFL);
        return updateLe32(v >>> 32);
    }

    Crc32c updateZeros(int n) {
        for (int i = 0; i < n; i++) {
            crc.update(0);
        }
        return this;
    }

    /** The raw (non-inverted) value, as ext4 stores it. */
    long raw() {
        return (~crc.getValue()) & 0xFFFFFFFFL;
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
