package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.ext4.ExternalTools;
import dev.kiln.ext4.Ext4Reader;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Sparse files from {@code dir:}: on Java 22+ (the release's runtime reads the multi-release
 * class that asks the kernel with {@code SEEK_DATA}/{@code SEEK_HOLE}) their holes are skipped,
 * not read; on Java 17 they are read and their zero blocks dropped. Both must give the image
 * GNU tar's {@code --sparse} archive gives through {@code tar:}, byte for byte; e2fsck checks it
 * and debugfs dumps every file. A 1 TiB file with 3 MiB of data, which nobody could read
 * whole in a test, is built by an unprivileged user on the newer runtime; debugfs's extent
 * list must name exactly the blocks that hold data, and rebuilt through {@code ext4:} on Java 17 it
 * keeps them without reading the holes. The seed ({@code -Dkiln.sparse.seed})
 * places the data.
 */
class SparseDirIT {
    private static final long SEED = Long.getLong("kiln.sparse.seed", 20261203L);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** tar: derives its UUID from what it read, dir: from the tree: one given to all makes them comparable. */
    private static final String UUID = "6b696c6e-0000-4000-8000-000000000016";

    /** The newest JDK of version 22 or later on this machine, as the build's java22.sh finds it. */
    static Path newerJava() throws Exception {
        Path best = null;
        int bestVersion = 0;
        List<Path> homes = new ArrayList<>();
        if (Files.isDirectory(Path.of("/usr/lib/jvm"))) {
            try (var s = Files.list(Path.of("/usr/lib/jvm"))) {
                s.sorted().forEach(homes::add);
            }
        }
        for (Path home : homes) {
            Path release = home.resolve("release");
            if (!Files.isRegularFile(release) || !Files.isExecutable(home.resolve("bin/java"))) {
                continue;
            }
            Matcher m = Pattern.compile("JAVA_VERSION=\"(\\d+)").matcher(Files.readString(release));
            if (m.find() && Integer.parseInt(m.group(1)) >= 22 && Integer.parseInt(m.group(1)) > bestVersion) {
                bestVersion = Integer.parseInt(m.group(1));
                best = home.resolve("bin/java");
            }
        }
        TestKernel.need(best != null, "no JDK 22 or newer under /usr/lib/jvm: the hole-skipping (FFM) reads are not tested");
        return best;
    }

    /** Writes {@code pieces} random runs at random, unaligned places of a file of {@code size} bytes; returns them. */
    private static List<long[]> sparseFile(Path p, long size, int pieces, int maxPiece, Random r) throws Exception {
        List<long[]> runs = new ArrayList<>();
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(size);
            for (int i = 0; i < pieces; i++) {
                long slot = size / pieces;
                long at = i == 0 ? 0 : i * slot + (long) (r.nextDouble() * (slot / 2));
                byte[] b = new byte[1 + r.nextInt(maxPiece)];
                r.nextBytes(b);
                f.seek(at);
                f.write(b);
                runs.add(new long[] {at, b.length});
            }
        }
        return runs;
    }

    private static long holesSkipped(String json) throws Exception {
        JsonNode n = JSON.readTree(json.substring(json.indexOf('{')));
        return n.get("holesSkipped").asLong();
    }

    @Test
    void sparseFilesMakeTheSameImageOnJava17Java22AndFromGnuTarsSparseArchive() throws Exception {
        ExternalTools.require("debugfs");
        Path java = newerJava();
        Unprivileged user = Unprivileged.withoutRange();
        Path home = Unprivileged.workDir();
        try {
            Path tree = Files.createDirectories(home.resolve("tree/data"));
            Random r = new Random(SEED);
            sparseFile(tree.resolve("sparse"), 256L << 20, 5, 300_000, r);
            sparseFile(tree.resolve("tail-data"), (40L << 20) + 123, 2, 5000, r);
            try (RandomAccessFile f = new RandomAccessFile(tree.resolve("only-holes").toFile(), "rw")) {
                f.setLength(100L << 20);
            }
            byte[] dense = new byte[3 << 20];
            r.nextBytes(dense);
            Files.write(tree.resolve("dense"), dense);
            Files.writeString(tree.resolve("small"), "small\n");
            var chown = ExternalTools.run(List.of("chown", "-R", user.uid() + ":" + user.gid(), home.toString()));
            assertEquals(0, chown.exit(), chown.out());

            Path onNewer = home.resolve("newer.ext4");
            var b = user.runOn(java.toString(), home, "build", "--image", "dir:" + home.resolve("tree"), "-o",
                    onNewer.toString(), "--size", "64M", "--no-boot-check", "-q", "--json", "--uuid", UUID, "--hash-seed", UUID);
            assertEquals(0, b.exit(), b.out());
            assertTrue(!b.out().contains("WARNING"), "no JVM warning (native access is enabled by the manifest): " + b.out());
            long skipped = holesSkipped(b.out());
            assertTrue(skipped > (390L << 20), "the holes of 396 MiB of sparse files were not read, " + skipped + " bytes: "
                    + b.out());

            Path on17 = home.resolve("17.ext4");
            var a = CliRunner.run("build", "--image", "dir:" + home.resolve("tree"), "-o", on17.toString(), "--size", "64M",
                    "--no-boot-check", "-q", "--json", "--uuid", UUID, "--hash-seed", UUID);
            assertEquals(0, a.exit(), a.err());
            assertEquals(0, holesSkipped(a.out()), "Java 17 cannot ask for holes: it reads them");

            Path tar = home.resolve("tree.tar");
            var made = ExternalTools.run(List.of("tar", "--sparse", "--sort=name", "--format=posix", "--numeric-owner",
                    "--pax-option=delete=atime,delete=ctime", "-C", home.resolve("tree").toString(), "-cf", tar.toString(),
                    "."));
            assertEquals(0, made.exit(), made.out());
            Path fromTar = home.resolve("tar.ext4");
            var t = CliRunner.run("build", "--image", "tar:" + tar, "-o", fromTar.toString(), "--size", "64M",
                    "--no-boot-check", "-q", "--uuid", UUID, "--hash-seed", UUID);
            assertEquals(0, t.exit(), t.err());

            ExternalTools.assertFsckClean(onNewer);
            for (String f : List.of("sparse", "tail-data", "only-holes", "dense", "small")) {
                Path dumped = home.resolve("dumped");
                Files.deleteIfExists(dumped);
                ExternalTools.debugfs(onNewer, "dump /data/" + f + " " + dumped);
                assertEquals(-1L, Files.mismatch(tree.resolve(f), dumped), "/data/" + f + " as debugfs dumps it");
            }
            Files.deleteIfExists(home.resolve("dumped"));
            // GNU tar sorted by name, without atime/ctime records, describes the tree as dir: reads it.
            assertEquals(-1L, Files.mismatch(on17, onNewer), "Java 17 and Java 22+ give the same image, seed " + SEED);
            assertEquals(-1L, Files.mismatch(fromTar, onNewer), "GNU tar's sparse archive gives the same image, seed " + SEED);
        } finally {
            ExternalTools.run(List.of("rm", "-rf", home.toString()));
        }
    }

    /**
     * Every sparse format GNU tar writes (old GNU with extension headers, PAX 0.0, 0.1 and 1.0),
     * with more regions than an old GNU header holds and regions larger than the read-ahead
     * buffer, small enough to be parsed inline and large enough (over 64 MiB) for the parser
     * thread: each gives the image {@code dir:} gives for the same tree.
     */
    @Test
    void gnuTarsSparseFormatsGiveTheTreesImageInlineAndOnTheParserThread() throws Exception {
        Path tmp = Files.createTempDirectory("kiln-sparse-tar");
        try {
            Random r = new Random(SEED + 2);
            for (String sizeName : List.of("small", "large")) {
                Path tree = Files.createDirectories(tmp.resolve(sizeName + "/data"));
                int pieces = sizeName.equals("small") ? 12 : 64;
                sparseFile(tree.resolve("disk.img"), 1L << 30, pieces, sizeName.equals("small") ? 3 << 19 : 3 << 20, r);
                Files.writeString(tree.resolve("after"), "an entry after the sparse one\n");
                // Whole seconds: the old GNU format has no finer times.
                var touch = ExternalTools.run(List.of("find", tmp.resolve(sizeName).toString(), "-exec", "touch", "-h", "-d",
                        "@1700000000", "{}", "+"));
                assertEquals(0, touch.exit(), touch.out());
                Path fromDir = tmp.resolve(sizeName + "-dir.ext4");
                var d = CliRunner.run("build", "--image", "dir:" + tmp.resolve(sizeName), "-o", fromDir.toString(), "--size",
                        "160M", "--no-boot-check", "-q", "--uuid", UUID, "--hash-seed", UUID);
                assertEquals(0, d.exit(), d.err());
                ExternalTools.assertFsckClean(fromDir);
                for (String[] format : List.of(new String[] {"--format=gnu"}, new String[] {"--format=posix",
                        "--sparse-version=0.0"}, new String[] {"--format=posix", "--sparse-version=0.1"},
                        new String[] {"--format=posix", "--sparse-version=1.0"})) {
                    Path tar = tmp.resolve(sizeName + ".tar");
                    List<String> cmd = new ArrayList<>(List.of("tar", "--sparse", "--sort=name", "--numeric-owner"));
                    cmd.addAll(List.of(format));
                    if (format[0].equals("--format=posix")) {
                        cmd.add("--pax-option=delete=atime,delete=ctime");
                    }
                    cmd.addAll(List.of("-C", tmp.resolve(sizeName).toString(), "-cf", tar.toString(), "."));
                    var made = ExternalTools.run(cmd);
                    assertEquals(0, made.exit(), made.out());
                    assertEquals(sizeName.equals("large"), Files.size(tar) >= 64L << 20, "the archive's size picks the path");
                    Path fromTar = tmp.resolve(sizeName + "-tar.ext4");
                    var t = CliRunner.run("build", "--image", "tar:" + tar, "-o", fromTar.toString(), "--size", "160M",
                            "--no-boot-check", "-q", "--uuid", UUID, "--hash-seed", UUID);
                    assertEquals(0, t.exit(), String.join(" ", format) + ": " + t.err());
                    assertEquals(-1L, Files.mismatch(fromDir, fromTar), sizeName + " archive, " + String.join(" ", format)
                            + ": not the dir: image, seed " + SEED);
                }
            }
        } finally {
            ExternalTools.run(List.of("rm", "-rf", tmp.toString()));
        }
    }

    @Test
    void aTebibyteOfHolesIsNeverRead() throws Exception {
        ExternalTools.require("debugfs");
        Path java = newerJava();
        Unprivileged user = Unprivileged.withoutRange();
        Path home = Unprivileged.workDir();
        try {
            Path tree = Files.createDirectories(home.resolve("tree"));
            Random r = new Random(SEED + 1);
            List<long[]> runs = sparseFile(tree.resolve("huge"), 1L << 40, 3, 1 << 20, r);
            var chown = ExternalTools.run(List.of("chown", "-R", user.uid() + ":" + user.gid(), home.toString()));
            assertEquals(0, chown.exit(), chown.out());
            Path img = home.resolve("huge.ext4");
            var b = user.runOn(java.toString(), home, "build", "--image", "dir:" + tree, "-o", img.toString(), "--size",
                    "32M", "--no-boot-check", "-q", "--json");
            assertEquals(0, b.exit(), b.out());
            long data = runs.stream().mapToLong(x -> x[1]).sum();
            assertTrue(holesSkipped(b.out()) >= (1L << 40) - data - 3 * 8192, b.out());
            ExternalTools.assertFsckClean(img);
            // debugfs's extents name the blocks that hold data, and only those.
            TreeSet<Long> expected = new TreeSet<>();
            for (long[] run : runs) {
                for (long blk = run[0] / 4096; blk <= (run[0] + run[1] - 1) / 4096; blk++) {
                    expected.add(blk);
                }
            }
            String stat = ExternalTools.debugfs(img, "stat /huge");
            assertTrue(stat.contains("Size: " + (1L << 40)), stat);
            TreeSet<Long> got = new TreeSet<>();
            Matcher m = Pattern.compile("\\((\\d+)(?:-(\\d+))?\\):\\d+").matcher(stat.substring(stat.indexOf("EXTENTS")));
            while (m.find()) {
                long from = Long.parseLong(m.group(1));
                long to = m.group(2) == null ? from : Long.parseLong(m.group(2));
                for (long blk = from; blk <= to; blk++) {
                    got.add(blk);
                }
            }
            assertEquals(expected, got, "the logical blocks with data, seed " + SEED);
            // Rebuilt from the image (ext4:), on Java 17: the extents say where the data is.
            Path again = home.resolve("again.ext4");
            var e = CliRunner.run("build", "--image", "ext4:" + img, "-o", again.toString(), "--size", "32M",
                    "--no-boot-check", "-q", "--json");
            assertEquals(0, e.exit(), e.err());
            assertTrue(holesSkipped(e.out()) >= (1L << 40) - data - 3 * 8192, e.out());
            ExternalTools.assertFsckClean(again);
            String stat2 = ExternalTools.debugfs(again, "stat /huge");
            assertEquals(stat.substring(stat.indexOf("EXTENTS")).replaceAll(":\\d+", ""),
                    stat2.substring(stat2.indexOf("EXTENTS")).replaceAll(":\\d+", ""), "ext4: keeps the data blocks");
            try (Ext4Reader x = Ext4Reader.open(img); RandomAccessFile f = new RandomAccessFile(tree.resolve("huge").toFile(), "r")) {
                for (long[] run : runs) {
                    byte[] want = new byte[(int) run[1]];
                    f.seek(run[0]);
                    f.readFully(want);
                    try (InputStream in = x.open("/huge")) {
                        assertEquals(run[0], in.skip(run[0]));
                        assertArrayEquals(want, in.readNBytes(want.length), "the data at " + run[0]);
                    }
                }
            }
        } finally {
            ExternalTools.run(List.of("rm", "-rf", home.toString()));
        }
    }
}
