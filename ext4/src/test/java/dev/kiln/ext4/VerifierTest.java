package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Predicate;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Damage of each kind is found and named; clean images are clean. */
class VerifierTest {
    @TempDir Path tmp;
    Path img;

    @BeforeEach
    void write() throws Exception {
        img = tmp.resolve("v.ext4");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(32L << 20).blockSize(1024).build())) {
            TestTree.everything().writeTo(w);
            // A file with a depth-1 extent tree, and a big directory (htree).
            byte[] frag = new byte[1024 * 40];
            for (int i = 0; i < 40; i += 2) {
                frag[i * 1024] = 1;
            }
            w.file("/frag", Metadata.of(0644, java.time.Instant.EPOCH), frag.length, new java.io.ByteArrayInputStream(frag));
            for (int i = 0; i < 300; i++) {
                w.file("/wide/f" + i, Metadata.of(0644, java.time.Instant.EPOCH), 0, java.io.InputStream.nullInputStream());
            }
        }
    }

    private List<Ext4Verifier.Problem> verify() throws Exception {
        try (Ext4Reader r = Ext4Reader.open(img)) {
            return Ext4Verifier.verify(r);
        }
    }

    private long inodeOffset(long ino) throws Exception {
        try (Ext4Reader r = Ext4Reader.open(img)) {
            int g = (int) ((ino - 1) / r.inodesPerGroup);
            long idx = (ino - 1) % r.inodesPerGroup;
            return r.groups[g].inodeTable * r.blockSize + idx * r.inodeSize;
        }
    }

    private void flip(long offset, int mask) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(offset);
            int b = f.read();
            f.seek(offset);
            f.write(b ^ mask);
        }
    }

    private void assertFound(Predicate<String> what, String describe) throws Exception {
        List<Ext4Verifier.Problem> p = verify();
        assertTrue(p.stream().anyMatch(x -> what.test(x.toString())), describe + " not reported; got " + p);
    }

    private long physical(String path, long logical) throws Exception {
        try (Ext4Reader r = Ext4Reader.open(img)) {
            long ino = r.resolve(path, false);
            return r.blockMap(ino, r.readInode(ino)).physical(logical);
        }
    }

    @Test
    void unknownIncompatibleFeatureIsRefusedByName() throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            byte[] sb = new byte[1024];
            f.seek(1024);
            f.readFully(sb);
            Le.put32(sb, 0x60, Le.get32(sb, 0x60) | 0x80000000L); // an incompat bit nobody defines
            Le.put32(sb, 0x3FC, new Crc32c().update(sb, 0, 0x3FC).raw());
            f.seek(1024);
            f.write(sb);
        }
        CorruptImageException e = org.junit.jupiter.api.Assertions.assertThrows(CorruptImageException.class,
                () -> Ext4Reader.open(img).close());
        assertTrue(e.getMessage().contains("unsupported incompatible feature(s) FEATURE_I31"), e.getMessage());
    }

    @Test
    void cleanImageIsClean() throws Exception {
        assertEquals(List.of(), verify());
    }

    @Test
    void problemsBeyondTheCapAreCountedNotListed() throws Exception {
        // 1,200 empty files, each with its inode checksum damaged: more problems than are listed.
        img = tmp.resolve("many.ext4");
        int files = Ext4Verifier.MAX_PROBLEMS + 200;
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(32L << 20).blockSize(1024).build())) {
            for (int i = 0; i < files; i++) {
                w.file("/f" + i, Metadata.of(0644, java.time.Instant.EPOCH), 0, java.io.InputStream.nullInputStream());
            }
        }
        for (int i = 0; i < files; i++) {
            long ino;
            try (Ext4Reader r = Ext4Reader.open(img)) {
                ino = r.resolve("/f" + i, false);
            }
            flip(inodeOffset(ino) + 0x10, 0x04);
        }
        List<Ext4Verifier.Problem> p = verify();
        assertEquals(Ext4Verifier.MAX_PROBLEMS + 1, p.size(), "the cap plus one summary line");
        String last = p.get(p.size() - 1).toString();
        assertTrue(last.matches("\\.\\.\\. and \\d+ more problem\\(s\\) not listed"), last);
        long more = Long.parseLong(last.replaceAll("\\D", ""));
        assertTrue(more >= 200, "at least the 200 damaged inodes past the cap are counted: " + last);
    }

    @Test
    void flippedInodeBit() throws Exception {
        long ino;
        try (Ext4Reader r = Ext4Reader.open(img)) {
            ino = r.resolve("/etc/passwd", false);
        }
        flip(inodeOffset(ino) + 0x10, 0x04); // mtime
        assertFound(s -> s.startsWith("inode " + ino + " (/etc/passwd)") && s.contains("checksum"), "inode checksum");
    }

    @Test
    void flippedBlockBitmapBit() throws Exception {
        long data = physical("/etc/passwd", 0);
        long bitmap;
        int bit;
        try (Ext4Reader r = Ext4Reader.open(img)) {
            int g = (int) ((data - r.sb.firstDataBlock) / r.sb.blocksPerGroup);
            bitmap = r.groups[g].blockBitmap;
            bit = (int) ((data - r.sb.firstDataBlock) % r.sb.blocksPerGroup);
        }
        flip(bitmap * 1024 + bit / 8, 1 << (bit % 8));
        assertFound(s -> s.contains("block bitmap misses 1 used block(s), first " + data), "bitmap difference");
        assertFound(s -> s.contains("block bitmap checksum"), "bitmap checksum");
    }

    @Test
    void flippedDirectoryBlockBit() throws Exception {
        long blk = physical("/etc", 0);
        flip(blk * 1024 + 30, 0x01);
        assertFound(s -> s.contains("(/etc)") && s.contains("directory block"), "directory damage");
    }

    @Test
    void flippedHtreeLeaf() throws Exception {
        long blk = physical("/wide", 2);
        flip(blk * 1024 + 9, 0x20); // a byte of the first name
        assertFound(s -> s.contains("(/wide)"), "htree leaf damage");
    }

    @Test
    void flippedExtentBlockBit() throws Exception {
        long node;
        try (Ext4Reader r = Ext4Reader.open(img)) {
            long ino = r.resolve("/frag", false);
            node = r.blockMap(ino, r.readInode(ino)).metadataBlocks().get(0);
        }
        flip(node * 1024 + 12 + 4, 0x02); // length of the first extent
        assertFound(s -> s.contains("(/frag)") && s.contains("extent"), "extent block damage");
    }

    @Test
    void wrongFreeCounts() throws Exception {
        // s_free_blocks_count_lo, with the superblock checksum made right again: only the count is wrong.
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            byte[] sb = new byte[1024];
            f.seek(1024);
            f.readFully(sb);
            Le.put32(sb, 0x0C, Le.get32(sb, 0x0C) + 1);
            Le.put32(sb, 0x3FC, new Crc32c().update(sb, 0, 0x3FC).raw());
            f.seek(1024);
            f.write(sb);
        }
        assertFound(s -> s.startsWith("superblock: free blocks count"), "superblock free blocks count");
    }

    @Test
    void wrongGroupFreeCountIsNamed() throws Exception {
        // Change a group's free-inode count and fix the descriptor checksum, so only the count is wrong.
        try (Ext4Reader r = Ext4Reader.open(img)) {
            long gdt = r.gdtBlocks[0] * 1024;
            try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
                byte[] d = new byte[64];
                f.seek(gdt);
                f.readFully(d);
                Le.put16(d, 0x0E, Le.get16(d, 0x0E) - 1);
                Le.put16(d, 0x1E, 0);
                long c = Crc32c.seeded(r.csumUuid).updateLe32(0).update(d, 0, 64).raw();
                Le.put16(d, 0x1E, (int) (c & 0xFFFF));
                f.seek(gdt);
                f.write(d);
            }
        }
        assertFound(s -> s.startsWith("group 0: free inodes count"), "group free inode count");
    }

    @Test
    void xattrBlockDamage() throws Exception {
        long blk;
        try (Ext4Reader r = Ext4Reader.open(img)) {
            blk = r.readInode(r.resolve("/home/nex/xattr-block", false)).fileAcl;
        }
        flip(blk * 1024 + 40, 0x10);
        assertFound(s -> s.contains("xattr"), "xattr block damage");
    }

    @Test
    void linkCountDamage() throws Exception {
        long ino;
        try (Ext4Reader r = Ext4Reader.open(img)) {
            ino = r.resolve("/usr/bin/sudo", false);
        }
        flip(inodeOffset(ino) + 0x1A, 0x02); // links count 1 -> 3
        assertFound(s -> s.contains("(/usr/bin/sudo)") && s.contains("link count 3 vs 1"), "link count");
    }
}
