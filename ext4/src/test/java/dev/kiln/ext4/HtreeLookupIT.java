package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Names looked up through a directory's hash index, as the kernel looks them up, agree with the
 * directory read whole: in directories e2fsprogs indexed ({@code e2fsck -D}, its own hashing and
 * its signed-char hash flag) and in kiln's own, with runs of names of one hash that continue
 * into the next leaf. Every name is found by the index (not by the fallback that reads the whole
 * directory), and names that are not there are not found. The random names' seed is fixed;
 * {@code -Dkiln.test.seed=N} tries another.
 */
class HtreeLookupIT {
    private static final long SEED = Long.getLong("kiln.test.seed", 20261205L);
    @TempDir Path tmp;

    @ParameterizedTest
    @ValueSource(ints = {1024, 4096})
    void directoriesE2fsckIndexedAnswerLookupsByHash(int blockSize) throws Exception {
        Random random = new Random(SEED);
        Path src = Files.createDirectories(tmp.resolve("src"));
        Path many = Files.createDirectories(src.resolve("many"));
        // Enough names for two index levels with 1 KiB blocks (a root holds 124 leaves).
        int count = blockSize == 1024 ? 7000 : 3000;
        for (int i = 0; i < count; i++) {
            Files.createFile(many.resolve(name(random, i)));
        }
        Files.createDirectories(many.resolve("sub"));
        Path img = tmp.resolve("mkfs.img");
        ExternalTools.run(List.of("truncate", "-s", "64M", img.toString()));
        var mk = ExternalTools.run(List.of("mkfs.ext4", "-q", "-F", "-b", Integer.toString(blockSize), "-N", "16384",
                "-d", src.toString(), img.toString()));
        assertEquals(0, mk.exit(), mk.out());
        // e2fsck -D indexes every directory (mke2fs -d writes them linear); exit 1: it changed the image.
        var fsck = ExternalTools.run(List.of(ExternalTools.require("e2fsck").toString(), "-fyD", img.toString()));
        assertTrue(fsck.exit() <= 1, fsck.out());
        ExternalTools.assertFsckClean(img);
        String htree = ExternalTools.debugfs(img, "htree /many");
        assertTrue(htree.contains("Number of entries"), "e2fsck -D should have indexed /many: "
                + htree.lines().limit(5).toList());
        if (blockSize == 1024) {
            assertTrue(htree.contains("Indirect levels: 1"), "two index levels: " + htree.lines().limit(8).toList());
        }
        assertLookupsAgree(img, "/many", random);
    }

    /** kiln's own index, with names whose hashes collide: a run may go on into the next leaf. */
    @Test
    void kilnsIndexWithCollidingHashesAnswersLookups() throws Exception {
        int[] seed = StructuresTest.testSeed();
        byte[] seedBytes = StructuresTest.seedBytes(seed);
        List<byte[]> names = StructuresTest.collidingNames(seed);
        for (int i = 0; i < 6000; i++) {
            names.add(("n" + (300_000 + i)).getBytes(StandardCharsets.US_ASCII));
        }
        Path img = tmp.resolve("kiln.ext4");
        Metadata md = TestTree.md(0644, 0, 0, 1_700_000_000L, 0);
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(32L << 20).blockSize(1024).inodeCount(8192)
                .hashSeed(seedBytes).build())) {
            for (byte[] n : names) {
                w.file("/d/" + new String(n, StandardCharsets.US_ASCII), md, 0, new ByteArrayInputStream(new byte[0]));
            }
        }
        ExternalTools.assertFsckClean(img);
        assertLookupsAgree(img, "/d", new Random(SEED));
    }

    /**
     * A directory of nothing but names in pairs of one major hash, so that leaf boundaries fall
     * inside such runs (the index entry of the leaf a run goes on in has the collision bit): a
     * name past the boundary is found only by following the run into the next leaf, as the
     * kernel does. kiln's index and e2fsck's (same hash seed, given to mke2fs) both.
     */
    @ParameterizedTest
    @ValueSource(strings = {"kiln", "e2fsck"})
    void aRunOfOneHashThatCrossesALeafIsFollowed(String indexedBy) throws Exception {
        int[] seed = StructuresTest.testSeed();
        byte[] seedBytes = StructuresTest.seedBytes(seed);
        // ~150 pairs among 1.2 million names: each name's major hash and index packed in a long, sorted.
        int n = 1_200_000;
        long[] keyed = new long[n];
        for (int i = 0; i < n; i++) {
            byte[] b = ("c" + i).getBytes(StandardCharsets.US_ASCII);
            keyed[i] = (DxHash.hash(b, 0, b.length, DxHash.HALF_MD4, seed)[0] << 21) | i;
        }
        java.util.Arrays.sort(keyed);
        List<String> names = new ArrayList<>();
        for (int i = 1; i < n; i++) {
            if (keyed[i] >>> 21 == keyed[i - 1] >>> 21) {
                names.add("c" + (keyed[i - 1] & 0x1FFFFF));
                names.add("c" + (keyed[i] & 0x1FFFFF));
            }
        }
        assertTrue(names.size() >= 100, "colliding pairs: " + names.size() / 2);
        Path img = tmp.resolve(indexedBy + ".ext4");
        if (indexedBy.equals("kiln")) {
            Metadata md = TestTree.md(0644, 0, 0, 1_700_000_000L, 0);
            try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(16L << 20).blockSize(1024).hashSeed(seedBytes)
                    .build())) {
                for (String name : names) {
                    w.file("/d/" + name, md, 0, new ByteArrayInputStream(new byte[0]));
                }
            }
        } else {
            Path d = Files.createDirectories(tmp.resolve("src/d"));
            for (String name : names) {
                Files.createFile(d.resolve(name));
            }
            java.nio.ByteBuffer u = java.nio.ByteBuffer.wrap(seedBytes);
            String uuid = new java.util.UUID(u.getLong(), u.getLong()).toString();
            ExternalTools.run(List.of("truncate", "-s", "16M", img.toString()));
            var mk = ExternalTools.run(List.of("mkfs.ext4", "-q", "-F", "-b", "1024", "-E", "hash_seed=" + uuid,
                    "-d", tmp.resolve("src").toString(), img.toString()));
            assertEquals(0, mk.exit(), mk.out());
            var fsck = ExternalTools.run(List.of(ExternalTools.require("e2fsck").toString(), "-fyD", img.toString()));
            assertTrue(fsck.exit() <= 1, fsck.out());
        }
        ExternalTools.assertFsckClean(img);
        try (Ext4Reader r = Ext4Reader.open(img)) {
            long dino = r.resolve("/d", true);
            Inode din = r.readInode(dino);
            assertNotEquals(0, din.flags & Inode.FLAG_INDEX, "/d should be indexed");
            byte[] root = r.readBlock(r.blockMap(dino, din).physical(0));
            int count = Le.get16(root, Directory.DX_ROOT_ENTRIES + 2);
            int crossing = 0;
            for (int i = 1; i < count; i++) {
                crossing += (int) (Le.get32(root, Directory.DX_ROOT_ENTRIES + 8 * i) & 1);
            }
            assertTrue(crossing > 0, "a run of one hash should cross a leaf boundary (" + count + " leaves, seed "
                    + java.util.Arrays.toString(seed) + ")");
        }
        assertLookupsAgree(img, "/d", new Random(SEED));
    }

    private static void assertLookupsAgree(Path img, String dir, Random random) throws Exception {
        try (Ext4Reader r = Ext4Reader.open(img)) {
            long dino = r.resolve(dir, true);
            Inode din = r.readInode(dino);
            assertNotEquals(0, din.flags & Inode.FLAG_INDEX, dir + " should be indexed");
            List<Ext4Reader.DirEntry> entries = r.list(dino);
            assertTrue(entries.size() > 200, "a directory worth an index: " + entries.size());
            for (Ext4Reader.DirEntry e : entries) {
                byte[] n = Names.encode(e.name());
                assertEquals(e.ino(), r.findIndexed(dino, din, n), "the index finds " + e.name() + " (seed " + SEED + ")");
                assertEquals(e.ino(), r.lookupPath(dir + "/" + e.name(), false), e.name());
            }
            List<String> absent = new ArrayList<>();
            for (int i = 0; i < 500; i++) {
                absent.add(name(random, 1_000_000 + i));
            }
            absent.add("n" + 299_999);
            for (String a : absent) {
                assertEquals(0, r.findIndexed(dino, din, Names.encode(a)), "not there: " + a);
            }
        }
    }

    /** A file name of 1-60 characters (some not ASCII), unique by {@code i}. */
    private static String name(Random random, int i) {
        String[] pieces = {"lib", "a", "Z", "-", "_", ".", "0", "é", "日本", "x".repeat(20)};
        StringBuilder sb = new StringBuilder();
        for (int k = 0, n = random.nextInt(4); k < n; k++) {
            sb.append(pieces[random.nextInt(pieces.length)]);
        }
        return sb.append(i).toString();
    }
}
