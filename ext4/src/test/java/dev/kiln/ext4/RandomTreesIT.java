package dev.kiln.ext4;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.LongRange;

/**
 * Random trees (names, types, sizes, holes, xattrs, hard links, block sizes) written and checked
 * by e2fsck -fn and by reading them back. jqwik prints the seed of a failing case for replay.
 */
class RandomTreesIT {
    @Property(tries = 25)
    void randomTreesAreCleanAndReadBack(@ForAll @LongRange(min = 1, max = Long.MAX_VALUE) long seed,
            @ForAll @IntRange(min = 0, max = 2) int blockSizeIndex) throws Exception {
        int blockSize = 1024 << blockSizeIndex;
        TestTree tree = random(new Random(seed));
        Path dir = Files.createTempDirectory("kiln-prop");
        Path img = dir.resolve("p.ext4");
        try {
            try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(48L << 20).blockSize(blockSize).build())) {
                tree.writeTo(w);
            }
            ExternalTools.assertFsckClean(img);
            try (Ext4Reader r = Ext4Reader.open(img)) {
                ReaderCheck.compare(r, tree);
            }
        } finally {
            Files.deleteIfExists(img);
            Files.deleteIfExists(dir);
        }
    }

    static TestTree random(Random rnd) {
        TestTree t = new TestTree();
        List<String> dirs = new ArrayList<>(List.of(""));
        List<String> files = new ArrayList<>();
        int n = 1 + rnd.nextInt(400);
        java.util.Set<String> used = new java.util.HashSet<>();
        for (int i = 0; i < n; i++) {
            String parent = dirs.get(rnd.nextInt(dirs.size()));
            String name = name(rnd);
            String path = parent + "/" + name;
            if (!used.add(path) || used.stream().anyMatch(u -> u.startsWith(path + "/"))) {
                continue;
            }
            long sec = rnd.nextInt(2_000_000_000) - 100_000_000L;
            Metadata md = TestTree.md(rnd.nextInt(07777 + 1), rnd.nextInt(3) == 0 ? rnd.nextInt() & 0xFFFFFFFFL : rnd.nextInt(2000),
                    rnd.nextInt(2000), sec, rnd.nextInt(1_000_000_000));
            if (rnd.nextInt(5) == 0) {
                Map<String, byte[]> x = new LinkedHashMap<>();
                int k = 1 + rnd.nextInt(4);
                for (int j = 0; j < k; j++) {
                    byte[] v = new byte[rnd.nextInt(rnd.nextBoolean() ? 20 : 150)];
                    rnd.nextBytes(v);
                    x.put((rnd.nextBoolean() ? "user." : "trusted.") + "a" + j + name.length(), v);
                }
                md = md.withXattrs(x);
            }
            int kind = rnd.nextInt(10);
            if (kind < 3) {
                t.dir(path, md);
                dirs.add(path);
            } else if (kind < 7) {
                long size = switch (rnd.nextInt(4)) {
                    case 0 -> 0;
                    case 1 -> rnd.nextInt(100);
                    case 2 -> rnd.nextInt(70_000);
                    default -> rnd.nextInt(600_000);
                };
                t.file(path, md, size, rnd.nextLong(), rnd.nextInt(4) == 0 ? 1 + rnd.nextInt(5) : 0);
                files.add(path);
            } else if (kind == 7) {
                t.symlink(path, md, "t".repeat(1 + rnd.nextInt(rnd.nextBoolean() ? 59 : 900)));
            } else if (kind == 8 && !files.isEmpty()) {
                t.hardLink(path, files.get(rnd.nextInt(files.size())));
            } else {
                switch (rnd.nextInt(4)) {
                    case 0 -> t.device(path, TestTree.Kind.CHR, md, rnd.nextInt(4096), rnd.nextInt(1 << 20));
                    case 1 -> t.device(path, TestTree.Kind.BLK, md, rnd.nextInt(256), rnd.nextInt(256));
                    case 2 -> t.special(path, TestTree.Kind.FIFO, md);
                    default -> t.special(path, TestTree.Kind.SOCK, md);
                }
            }
        }
        return t;
    }

    private static String name(Random rnd) {
        int len = rnd.nextInt(20) == 0 ? 200 + rnd.nextInt(56) : 1 + rnd.nextInt(24);
        StringBuilder b = new StringBuilder();
        String alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_.ABCXYZ éü名";
        while (b.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8).length < len) {
            b.append(alphabet.charAt(rnd.nextInt(alphabet.length())));
        }
        String s = b.toString();
        while (s.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > 255) {
            s = s.substring(0, s.length() - 1);
        }
        if (s.equals(".") || s.equals("..") || s.equals("lost+found")) {
            s = "x" + s;
        }
        return s;
    }
}
