package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

class StructuresTest {
    private static final byte[] UUID = new byte[16];

    @Test
    void extentTreeStaysInInodeUpToFourExtents() {
        List<long[]> ext = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            ext.add(new long[] {i * 10L, 1000 + i * 20L, 5});
        }
        byte[] iblock = new byte[60];
        long[] next = {5000};
        var blocks = ExtentTree.build(ext, iblock, 4096, () -> next[0]++, 12, UUID, true);
        assertEquals(0, blocks.size());
        assertEquals(ExtentTree.MAGIC, Le.get16(iblock, 0));
        assertEquals(4, Le.get16(iblock, 2));
        assertEquals(0, Le.get16(iblock, 6));
        assertEquals(1060, Le.get32(iblock, 12 + 3 * 12 + 8));
    }

    @Test
    void extentTreeGrowsLevels() {
        int perBlock = (1024 - 12) / 12;
        int n = 4 * perBlock + 1; // one more than two levels can index from the inode
        List<long[]> ext = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            ext.add(new long[] {2L * i, 100000 + 2L * i, 1});
        }
        byte[] iblock = new byte[60];
        long[] next = {5000};
        var blocks = ExtentTree.build(ext, iblock, 1024, () -> next[0]++, 12, UUID, true);
        assertEquals(2, Le.get16(iblock, 6), "depth");
        assertEquals(ExtentTree.treeBlocks(n, 1024), blocks.size());
        // every tree block carries a valid checksum right after its eh_max entries
        for (var b : blocks) {
            int max = Le.get16(b.data(), 4);
            int tail = 12 + max * 12;
            assertEquals(Crc32c.inodeSeeded(UUID, 12, 0).update(b.data(), 0, tail).raw(), Le.get32(b.data(), tail));
        }
    }

    /**
     * Names whose major hashes collide (31 bits of half-MD4 under {@code seed}): among 200,000
     * names some ten pairs. The seed is fixed; {@code -Dkiln.test.seed=N} tries another.
     */
    static List<byte[]> collidingNames(int[] seed) {
        Map<Long, List<byte[]>> byMajor = new java.util.HashMap<>();
        for (int i = 0; i < 200_000; i++) {
            byte[] n = ("n" + i).getBytes(StandardCharsets.US_ASCII);
            long major = DxHash.hash(n, 0, n.length, DxHash.HALF_MD4, seed)[0];
            byMajor.computeIfAbsent(major, k -> new ArrayList<>(2)).add(n);
        }
        List<byte[]> out = new ArrayList<>();
        for (List<byte[]> l : byMajor.values()) {
            if (l.size() > 1) {
                out.addAll(l);
            }
        }
        return out;
    }

    /** {@code seed} as the 16 bytes of an {@link Ext4Options.Builder#hashSeed}. */
    static byte[] seedBytes(int[] seed) {
        byte[] b = new byte[16];
        for (int i = 0; i < 4; i++) {
            Le.put32(b, i * 4, seed[i] & 0xFFFFFFFFL);
        }
        return b;
    }

    static int[] testSeed() {
        java.util.Random r = new java.util.Random(Long.getLong("kiln.test.seed", 20261204L));
        return new int[] {r.nextInt(), r.nextInt(), r.nextInt(), r.nextInt()};
    }

    @Test
    void hashOrderIsMajorThenMinorThenNameAlsoForCollisions() {
        int[] seed = testSeed();
        List<byte[]> names = collidingNames(seed);
        assertTrue(names.size() >= 2, "200,000 names hold a collision of 31-bit hashes");
        java.util.Random r = new java.util.Random(7);
        for (int i = 0; i < 3000; i++) {
            names.add(("other-" + r.nextInt(1_000_000) + "-" + i).getBytes(StandardCharsets.UTF_8));
        }
        java.util.Collections.shuffle(names, r);
        List<Directory.Entry> entries = new ArrayList<>();
        for (byte[] n : names) {
            entries.add(new Directory.Entry(n, 100 + entries.size(), 1));
        }
        // The rule as a comparator: what a list of (major, minor, name) records sorted to before.
        List<Integer> expected = new ArrayList<>();
        for (int i = 0; i < entries.size(); i++) {
            expected.add(i);
        }
        expected.sort((a, b) -> {
            byte[] x = entries.get(a).name();
            byte[] y = entries.get(b).name();
            long[] hx = DxHash.hash(x, 0, x.length, DxHash.HALF_MD4, seed);
            long[] hy = DxHash.hash(y, 0, y.length, DxHash.HALF_MD4, seed);
            int c = Long.compare(hx[0], hy[0]);
            c = c != 0 ? c : Long.compare(hx[1], hy[1]);
            return c != 0 ? c : java.util.Arrays.compare(x, y);
        });
        long[] majors = new long[entries.size()];
        int[] order = Directory.hashOrder(entries, DxHash.HALF_MD4, seed, majors);
        for (int k = 0; k < order.length; k++) {
            assertEquals((int) expected.get(k), order[k], "position " + k);
            byte[] n = entries.get(order[k]).name();
            assertEquals(DxHash.hash(n, 0, n.length, DxHash.HALF_MD4, seed)[0], majors[k], "major at " + k);
        }
    }

    @Test
    void linearDirectoryRecordsCoverTheBlock() {
        List<Directory.Entry> entries = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            entries.add(new Directory.Entry(("name" + i).getBytes(StandardCharsets.UTF_8), 20 + i, 1));
        }
        var d = Directory.build(entries, 12, 2, 4096, true, true, DxHash.HALF_MD4, new int[4], UUID, 0);
        assertEquals(1, d.blocks().size());
        byte[] b = d.blocks().get(0);
        int p = 0;
        int names = 0;
        while (p < 4096 - 12) {
            int rec = Le.get16(b, p + 4);
            assertTrue(rec >= 12 && rec % 4 == 0);
            names++;
            p += rec;
        }
        assertEquals(4096 - 12, p);
        assertEquals(12, names);
        assertEquals(Directory.TAIL_TYPE, Le.get8(b, 4096 - 12 + 7));
    }

    @Test
    void largeDirectoryIsIndexedWithSortedLeaves() {
        List<Directory.Entry> entries = new ArrayList<>();
        for (int i = 0; i < 20000; i++) {
            entries.add(new Directory.Entry(("file-with-a-longer-name-" + i).getBytes(StandardCharsets.UTF_8), 20 + i, 1));
        }
        int[] seed = {1, 2, 3, 4};
        var d = Directory.build(entries, 12, 2, 1024, true, true, DxHash.HALF_MD4, seed, UUID, 0);
        assertTrue(d.indexed());
        byte[] root = d.blocks().get(0);
        assertEquals(1, Le.get8(root, 30), "a 1 KiB directory of 20000 names needs two index levels");
        // leaves: every name's hash lies in its leaf's range
        long seen = 0;
        for (int i = 1; i < d.blocks().size(); i++) {
            byte[] b = d.blocks().get(i);
            if (Le.get32(b, 0) == 0 && Le.get16(b, 4) == 1024) {
                continue; // dx_node
            }
            int p = 0;
            while (p < 1024 - 12) {
                int len = Le.get8(b, p + 6);
                long h = DxHash.hash(b, p + 8, len, DxHash.HALF_MD4, seed)[0];
                assertTrue(h >= seen, "hash order");
                seen = h;
                p += Le.get16(b, p + 4);
            }
        }
    }

    @Test
    void tooManyNamesForTwoLevelsIsACapacityError() {
        List<Directory.Entry> entries = new ArrayList<>();
        for (int i = 0; i < 400_000; i++) {
            entries.add(new Directory.Entry(("a-rather-long-file-name-to-fill-blocks-" + i).getBytes(StandardCharsets.UTF_8), 20, 1));
        }
        assertThrows(CapacityExceededException.class,
                () -> Directory.build(entries, 12, 2, 1024, true, true, DxHash.HALF_MD4, new int[4], UUID, 0));
    }

    @Test
    void xattrsAreSortedAndHashed() {
        Map<String, byte[]> x = new TreeMap<>();
        x.put("user.zz", new byte[] {1});
        x.put("security.capability", new byte[20]);
        x.put("user.a", "value".getBytes(StandardCharsets.UTF_8));
        List<Xattr.Attr> attrs = Xattr.sorted(x);
        assertEquals(1, attrs.get(0).name().index());
        assertEquals("a", new String(attrs.get(0).name().suffix(), StandardCharsets.UTF_8));
        assertEquals(6, attrs.get(2).name().index());
        byte[] block = Xattr.encodeBlock(attrs, 4096, 777, UUID, true);
        assertEquals(Xattr.MAGIC, Le.get32(block, 0));
        long stored = Le.get32(block, 16);
        Le.put32(block, 16, 0);
        assertEquals(Crc32c.seeded(UUID).updateLe64(777).update(block).raw(), stored);
        assertThrows(IllegalArgumentException.class, () -> Xattr.split("gnu.foo"));
    }

    @Test
    void posixAclConvertsToTheCompactDiskFormat() {
        // version 2; USER_OBJ rw; USER 1000 r; GROUP_OBJ r; MASK r; OTHER none
        byte[] vfs = new byte[4 + 5 * 8];
        Le.put32(vfs, 0, 2);
        int[][] e = {{1, 6, -1}, {2, 4, 1000}, {4, 4, -1}, {0x10, 4, -1}, {0x20, 0, -1}};
        for (int i = 0; i < e.length; i++) {
            Le.put16(vfs, 4 + i * 8, e[i][0]);
            Le.put16(vfs, 6 + i * 8, e[i][1]);
            Le.put32(vfs, 8 + i * 8, e[i][2] & 0xFFFFFFFFL);
        }
        byte[] disk = PosixAcl.toDisk(vfs);
        assertEquals(4 + 4 + 8 + 4 + 4 + 4, disk.length);
        assertEquals(1, Le.get32(disk, 0));
        assertEquals(1000, Le.get32(disk, 12));
        byte[] back = PosixAcl.fromDisk(disk);
        assertEquals(vfs.length, back.length);
        assertEquals(1000, Le.get32(back, 16));
    }
}
