package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;

class ChecksumTest {
    @Test
    void rawCrcIsTheUninvertedCastagnoli() {
        byte[] data = "123456789".getBytes(StandardCharsets.US_ASCII);
        // The standard check value of CRC-32C is 0xE3069283; ext4 stores it without the final xor.
        assertEquals(~0xE3069283L & 0xFFFFFFFFL, new Crc32c().update(data).raw());
        CRC32C jdk = new CRC32C();
        jdk.update(data);
        assertEquals(0xE3069283L, jdk.getValue());
    }

    @Test
    void chainingEqualsConcatenation() {
        byte[] a = {1, 2, 3};
        byte[] b = {4, 5, 6, 7};
        byte[] ab = {1, 2, 3, 4, 5, 6, 7};
        assertEquals(new Crc32c().update(ab).raw(), new Crc32c().update(a).update(b).raw());
        assertEquals(new Crc32c().update(new byte[] {9, 0, 0, 0}).raw(), new Crc32c().updateLe32(9).raw());
    }

    @Test
    void aLittleEndianWordIsItsFourBytesInBothModes() {
        CRC32C jdk = new CRC32C();
        jdk.update(new byte[] {(byte) 0xC4, (byte) 0xD3, (byte) 0xE2, (byte) 0xF1});
        long expected = ~jdk.getValue() & 0xFFFFFFFFL;
        assertEquals(expected, new Crc32c().updateLe32(0xF1E2D3C4L).raw());
        // The software mode (an explicit seed) from ~0 is the same chain.
        assertEquals(expected, Crc32c.fromSeed(0xFFFFFFFFL).updateLe32(0xF1E2D3C4L).raw());
    }

    /** The JDK's CRC32C over the bytes made is the oracle for holes that are never made. */
    @Test
    void combiningAndZeroRunsEqualTheJdkOverTheWholeContent() {
        long seed = Long.getLong("kiln.crc.seed", 16);
        java.util.Random rnd = new java.util.Random(seed);
        for (int round = 0; round < 200; round++) {
            int pieces = 1 + rnd.nextInt(6);
            java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
            long combined = 0;
            for (int p = 0; p < pieces; p++) {
                byte[] piece;
                if (rnd.nextBoolean()) {
                    piece = new byte[rnd.nextInt(round < 20 ? 3 : 70_000)];
                    long z = Crc32c.zeros(piece.length);
                    CRC32C made = new CRC32C();
                    made.update(piece);
                    assertEquals(made.getValue(), z, "zeros(" + piece.length + "), seed " + seed);
                    combined = Crc32c.combine(combined, z, piece.length);
                } else {
                    piece = new byte[rnd.nextInt(5_000)];
                    rnd.nextBytes(piece);
                    CRC32C c = new CRC32C();
                    c.update(piece);
                    combined = Crc32c.combine(combined, c.getValue(), piece.length);
                }
                all.writeBytes(piece);
            }
            CRC32C whole = new CRC32C();
            whole.update(all.toByteArray());
            assertEquals(whole.getValue(), combined, "round " + round + ", seed " + seed);
        }
        // A hole longer than any array: 2^31 + 5 zeros, then data, against the JDK fed in 1 MiB steps.
        long n = (1L << 31) + 5;
        CRC32C big = new CRC32C();
        byte[] mib = new byte[1 << 20];
        for (long left = n; left > 0; left -= mib.length) {
            big.update(mib, 0, (int) Math.min(left, mib.length));
        }
        byte[] tail = "tail".getBytes(StandardCharsets.US_ASCII);
        big.update(tail);
        CRC32C t = new CRC32C();
        t.update(tail);
        assertEquals(big.getValue(), Crc32c.combine(Crc32c.zeros(n), t.getValue(), tail.length));
    }

    @Test
    void anExplicitSeedChainsLikeTheUuidPrefix() {
        byte[] uuid = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};
        byte[] data = "some metadata block".getBytes(StandardCharsets.US_ASCII);
        long seed = Crc32c.seeded(uuid).raw();
        assertEquals(Crc32c.seeded(uuid).updateLe32(12).update(data).raw(),
                Crc32c.fromSeed(seed).updateLe32(12).update(data).raw());
        assertEquals(new Crc32c().update(data).raw(), Crc32c.fromSeed(0xFFFFFFFFL).update(data).raw());
    }

    @Test
    void superblockRoundTripsAndRejectsDamage() {
        Superblock s = new Superblock();
        s.inodesCount = 9600;
        s.blocksCount = 38400;
        s.featureRoCompat = Features.RO_COMPAT_METADATA_CSUM;
        s.uuid = new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        s.logBlockSize = 2;
        byte[] b = s.encode();
        Superblock d = Superblock.decode(b, 0);
        assertEquals(38400, d.blocksCount());
        assertEquals(4096, d.blockSize());
        assertEquals(9600, d.inodesCount());
        b[4] ^= 1;
        CorruptImageException e = assertThrows(CorruptImageException.class, () -> Superblock.decode(b, 0));
        assertEquals(true, e.getMessage().contains("checksum"));
        byte[] c = s.encode();
        c[0x38] = 0;
        assertThrows(CorruptImageException.class, () -> Superblock.decode(c, 0));
    }

    @Test
    void groupDescriptorChecksumCoversGroupNumber() {
        GroupDescriptor g = new GroupDescriptor();
        g.blockBitmap = 20;
        g.inodeTable = 24;
        byte[] uuid = new byte[16];
        byte[] a = new byte[64];
        byte[] b = new byte[64];
        g.encode(a, 0, 0, uuid, true);
        g.encode(b, 0, 1, uuid, true);
        assertEquals(Le.get32(a, 0), Le.get32(b, 0));
        org.junit.jupiter.api.Assertions.assertNotEquals(Le.get16(a, 0x1E), Le.get16(b, 0x1E));
        GroupDescriptor d = GroupDescriptor.decode(a, 0, 64);
        assertEquals(24, d.inodeTable);
    }

    @Test
    void journalSuperblockIsBigEndianWithV3Checksum() {
        byte[] uuid = new byte[16];
        byte[] j = JournalSuperblock.encode(4096, 4096, uuid, true);
        assertEquals(JournalSuperblock.MAGIC, Le.getBe32(j, 0));
        assertEquals(4096, Le.getBe32(j, 0x0C));
        assertEquals(4096, Le.getBe32(j, 0x10));
        assertEquals(0, Le.getBe32(j, 0x1C));
        long stored = Le.getBe32(j, JournalSuperblock.CHECKSUM_OFFSET);
        Le.putBe32(j, JournalSuperblock.CHECKSUM_OFFSET, 0);
        assertEquals(new Crc32c().update(j).raw(), stored);
    }
}
