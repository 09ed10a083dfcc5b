package dev.kiln.ext4;

/**
 * The JBD2 superblock in the first block of the journal ({@code Documentation/filesystems/ext4/
 * journal.rst}); big-endian, unlike the rest of ext4. A clean journal has s_start 0, so the
 * kernel mounts without replay. With checksum v3, s_checksum is crc32c(~0, the 1024-byte
 * superblock with s_checksum zeroed).
 */
final class JournalSuperblock {
    static final long MAGIC = 0xC03B3998L;
    static final int BLOCKTYPE_SUPERBLOCK_V2 = 4;
    static final int INCOMPAT_CSUM_V3 = 0x10;
    static final int CHECKSUM_CRC32C = 4;
    static final int SIZE = 1024;
    static final int CHECKSUM_OFFSET = 0xFC;

    private JournalSuperblock() {}

    static byte[] encode(int blockSize, long maxLen, byte[] uuid, boolean csumV3) {
        byte[] b = new byte[SIZE];
        Le.putBe32(b, 0x00, MAGIC);
        Le.putBe32(b, 0x04, BLOCKTYPE_SUPERBLOCK_V2);
        Le.putBe32(b, 0x08, 0);
        Le.putBe32(b, 0x0C, blockSize);
        Le.putBe32(b, 0x10, maxLen);
        Le.putBe32(b, 0x14, 1); // first log block
        Le.putBe32(b, 0x18, 1); // first expected commit id
        Le.putBe32(b, 0x1C, 0); // s_start 0: clean, nothing to replay
        Le.putBe32(b, 0x28, csumV3 ? INCOMPAT_CSUM_V3 : 0);
        System.arraycopy(uuid, 0, b, 0x30, 16);
        Le.putBe32(b, 0x40, 1); // one user: this file system
        if (csumV3) {
            b[0x50] = CHECKSUM_CRC32C;
            long c = new Crc32c().update(b, 0, SIZE).raw();
            Le.putBe32(b, CHECKSUM_OFFSET, c);
        }
        return b;
    }
}
