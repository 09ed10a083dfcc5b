package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * kiln's checksums against the ones mkfs.ext4 stored: the oracle is e2fsprogs, not kiln's own
 * helpers. Superblock, group descriptors, the journal superblock, and kiln's journal superblock
 * against mke2fs's field by field.
 */
class ChecksumInteropIT {
    @TempDir Path tmp;

    private Path mkfs(String... opts) throws Exception {
        Path img = tmp.resolve("m" + System.nanoTime() + ".ext4");
        List<String> cmd = new java.util.ArrayList<>(List.of("mkfs.ext4", "-q", "-F"));
        cmd.addAll(List.of(opts));
        cmd.addAll(List.of(img.toString(), "64M"));
        var r = ExternalTools.run(cmd);
        assertEquals(0, r.exit(), r.out());
        return img;
    }

    private static byte[] read(Path img, long off, int len) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "r")) {
            byte[] b = new byte[len];
            f.seek(off);
            f.readFully(b);
            return b;
        }
    }

    @Test
    void superblockAndDescriptorChecksumsEqualWhatMke2fsStored() throws Exception {
        ExternalTools.require("mkfs.ext4");
        for (String[] opts : List.of(new String[0], new String[] {"-b", "1024"}, new String[] {"-O", "metadata_csum_seed"})) {
            Path img = mkfs(opts);
            byte[] sb = read(img, 1024, 1024);
            assertEquals(Le.get32(sb, 0x3FC), new Crc32c().update(sb, 0, 0x3FC).raw(), "superblock crc32c");
            try (Ext4Reader r = Ext4Reader.open(img)) {
                int descSize = r.descSize;
                for (int g = 0; g < r.groupCount; g++) {
                    int perBlock = r.blockSize / descSize;
                    byte[] blk = read(img, r.gdtBlocks[g / perBlock] * r.blockSize, r.blockSize);
                    byte[] d = java.util.Arrays.copyOfRange(blk, (g % perBlock) * descSize, (g % perBlock + 1) * descSize);
                    long stored = Le.get16(d, 0x1E);
                    d[0x1E] = 0;
                    d[0x1F] = 0;
                    long ours = r.seed().updateLe32(g).update(d, 0, d.length).raw() & 0xFFFF;
                    assertEquals(stored, ours, "group " + g + " descriptor crc32c (" + String.join(" ", opts) + ")");
                }
            }
        }
    }

    @Test
    void journalSuperblockEqualsMke2fsFieldByField() throws Exception {
        ExternalTools.require("mkfs.ext4");
        Path img = mkfs();
        try (Ext4Reader r = Ext4Reader.open(img)) {
            long jino = r.journalInode();
            Inode in = r.readInode(jino);
            long first = r.blockMap(jino, in).physical(0);
            byte[] theirs = read(img, first * r.blockSize, JournalSuperblock.SIZE);
            if ((Le.getBe32(theirs, 0x28) & JournalSuperblock.INCOMPAT_CSUM_V3) != 0) {
                long stored = Le.getBe32(theirs, JournalSuperblock.CHECKSUM_OFFSET);
                byte[] zeroed = theirs.clone();
                Le.putBe32(zeroed, JournalSuperblock.CHECKSUM_OFFSET, 0);
                assertEquals(stored, new Crc32c().update(zeroed).raw(), "journal superblock crc32c as mke2fs stored it");
            }
            // With a checksum of its own (what kiln writes), e2fsck must accept it: see the writer's
            // tests, which run e2fsck -fn on every image; here the layout fields must be mke2fs's.
            long blocks = in.size / r.blockSize;
            byte[] ours = JournalSuperblock.encode(r.blockSize, blocks, new byte[16], true);
            for (int[] field : new int[][] {{0, 4}, {4, 4}, {0x0C, 4}, {0x10, 4}, {0x14, 4}, {0x1C, 4}}) {
                assertEquals(java.util.HexFormat.of().formatHex(theirs, field[0], field[0] + field[1]),
                        java.util.HexFormat.of().formatHex(ours, field[0], field[0] + field[1]),
                        "journal superblock field at 0x" + Integer.toHexString(field[0]));
            }
        }
    }
}
