package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.ExternalTools;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * No reading command exits 1 (a bug) or 2 (usage) or prints a stack trace on a damaged image:
 * images mkfs.ext4 made, damaged with debugfs and by seeded byte flips, read by inspect, ls -R,
 * cat, extract --tar and verify. Each says what is wrong (exit 3) or reads what it can (exit 0).
 */
class ReadingDamagedIT {
    @TempDir Path tmp;

    private Path base(String... opts) throws Exception {
        ExternalTools.require("mkfs.ext4");
        Path tree = tmp.resolve("tree");
        if (!Files.exists(tree)) {
            Files.createDirectories(tree.resolve("etc"));
            Files.writeString(tree.resolve("etc/hostname"), "nex\n");
            Files.writeString(tree.resolve("etc/tiny"), "t");
            byte[] big = new byte[200_000];
            new Random(3).nextBytes(big);
            Files.write(tree.resolve("etc/big"), big);
            Files.createSymbolicLink(tree.resolve("link"), Path.of("etc/hostname"));
            for (int i = 0; i < 150; i++) {
                Files.writeString(tree.resolve("etc/f" + i), "x" + i);
            }
            if (ExternalTools.isRoot()) {
                ExternalTools.run(List.of("mknod", tree.resolve("null").toString(), "c", "1", "3"));
            }
        }
        Path img = tmp.resolve("i" + System.nanoTime() + ".ext4");
        List<String> cmd = new ArrayList<>(List.of("mkfs.ext4", "-q", "-F", "-d", tree.toString()));
        cmd.addAll(List.of(opts));
        cmd.addAll(List.of(img.toString(), "32M"));
        var r = ExternalTools.run(cmd);
        assertEquals(0, r.exit(), r.out());
        return img;
    }

    private void readAll(String what, Path img) {
        List<String[]> commands = List.of(new String[] {"inspect", img.toString()},
                new String[] {"ls", img.toString(), "/", "-l", "-R"},
                new String[] {"cat", img.toString(), "/etc/big"},
                new String[] {"cat", img.toString(), "/etc/tiny"},
                new String[] {"extract", img.toString(), "--tar", tmp.resolve("x.tar").toString()},
                new String[] {"verify", img.toString()});
        var old = ImageCommands.Cat.stdout;
        ImageCommands.Cat.stdout = java.io.OutputStream.nullOutputStream();
        try {
            for (String[] c : commands) {
                var r = CliRunner.run(c);
                assertTrue(r.exit() == 0 || r.exit() == 3, what + ": kiln " + String.join(" ", c) + " exited " + r.exit()
                        + ": " + r.err());
                assertFalse(r.err().contains("Exception") || r.err().contains("\tat "), what + ": " + r.err());
                if (r.exit() == 3) {
                    assertTrue(r.err().startsWith("error: ") || r.err().contains("\nerror: "), what + ": " + r.err());
                }
            }
        } finally {
            ImageCommands.Cat.stdout = old;
        }
    }

    private static void debugfs(Path img, String req) throws Exception {
        var r = ExternalTools.run(List.of("debugfs", "-w", "-R", req, img.toString()));
        assertEquals(0, r.exit(), r.out());
    }

    @Test
    void fieldDamage() throws Exception {
        ExternalTools.require("debugfs");
        String[][] cases = {
            {"", "sif /etc/hostname mode 0170644"}, {"", "sif /etc/big size 1"}, {"", "sif /etc/big block[5] 0x7fffffff"},
            {"inline", "sif /etc/tiny size 500"}, {"inline", "sif /etc mode 0100644"}, {"", "sif /link size 300"},
            {"", "sif <2> block[5] 999999"}, {"", "sif /etc/big flags 0x10000000"}, {"", "ssv inodes_count 5"},
            {"", "sif /etc links_count 0"}, {"nocsum", "sif /etc/big block[1] 0x00ff0000"}, {"", "ssv state 2"},
        };
        for (String[] c : cases) {
            Path img = switch (c[0]) {
                case "inline" -> base("-O", "inline_data");
                case "nocsum" -> base("-O", "^metadata_csum");
                default -> base();
            };
            debugfs(img, c[1]);
            readAll(c[1], img);
        }
    }

    @Test
    void seededByteFlips() throws Exception {
        long seed = Long.getLong("kiln.diff.seed", 20261202L);
        Random rnd = new Random(seed);
        for (int i = 0; i < 30; i++) {
            Path img = i % 2 == 0 ? base() : base("-O", "inline_data,^metadata_csum");
            long size = Files.size(img);
            try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
                // Bias towards the metadata at the start of the image.
                for (int k = 0; k < 8; k++) {
                    long off = (long) (Math.pow(rnd.nextDouble(), 3) * Math.min(size, 2L << 20));
                    f.seek(off);
                    int b = f.read();
                    f.seek(off);
                    f.write(b ^ (1 << rnd.nextInt(8)));
                }
            }
            readAll("seed " + seed + " case " + i, img);
        }
    }

    @Test
    void notAnImageATruncatedImageAndATruncatedGz() throws Exception {
        Path text = tmp.resolve("notes.txt");
        Files.writeString(text, "hello, this is not a file system\n".repeat(100));
        var r = CliRunner.run("ls", text.toString());
        assertEquals(3, r.exit(), r.err());
        assertTrue(r.err().contains("not an ext2/3/4 image"), r.err());
        Path img = base();
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.setLength(10L << 20);
        }
        r = CliRunner.run("inspect", img.toString());
        assertEquals(3, r.exit(), r.err());
        assertTrue(r.err().contains("truncated: 10485760 bytes") && r.err().contains("bytes missing"), r.err());
        Path gz = tmp.resolve("rootfs.ext4.gz");
        var g = ExternalTools.run(List.of("sh", "-c", "gzip -c " + base() + " | head -c 20000 > " + gz));
        assertEquals(0, g.exit(), g.out());
        r = CliRunner.run("ls", gz.toString());
        assertEquals(3, r.exit(), r.err());
        assertTrue(r.err().contains(gz + ": the gzip file is truncated"), r.err());
    }
}
