package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.ExternalTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The read-ahead paths need no root, so they are run by an unprivileged user too: a tarball over
 * the 64 MiB from which a parser thread reads it (files in 1 MiB pieces through the ring) and
 * the same tree as {@code dir:} (the walker's ring, a hard link read ahead with its first name).
 * The user's tar: image must equal root's byte for byte, both images pass e2fsck, and debugfs
 * reads the files back as they were.
 */
class ReadAheadRootlessIT {
    private static final long SEED = Long.getLong("kiln.rootless.seed", 20261203L);

    @Test
    void anUnprivilegedUserBuildsALargeTarballAndATreeThroughTheReadAheadRing() throws Exception {
        Unprivileged user = Unprivileged.withoutRange();
        ExternalTools.require("debugfs");
        Path home = Unprivileged.workDir();
        try {
            Path tree = Files.createDirectories(home.resolve("tree/data"));
            Random r = new Random(SEED);
            for (int i = 0; i < 9; i++) {
                byte[] b = new byte[(8 << 20) + r.nextInt(1 << 20)];
                r.nextBytes(b);
                Files.write(tree.resolve("big" + i), b);
            }
            for (int i = 0; i < 200; i++) {
                byte[] b = new byte[r.nextInt(20_000)];
                r.nextBytes(b);
                Files.write(tree.resolve("small" + i), b);
            }
            Files.createLink(tree.resolve("z-link"), tree.resolve("small7"));
            // User xattrs on a file read ahead and on one the kernel copies: a dir: walk lists
            // a regular file's on the writer's thread, from the descriptor the walk opened.
            boolean xattrs = true;
            for (String f : List.of("small9", "big4")) {
                try {
                    Files.getFileAttributeView(tree.resolve(f), java.nio.file.attribute.UserDefinedFileAttributeView.class)
                            .write("kiln", java.nio.ByteBuffer.wrap(("value of " + f).getBytes()));
                } catch (java.io.IOException | UnsupportedOperationException e) {
                    xattrs = false; // the work directory's file system keeps none
                }
            }
            // Enough names that /data is hash-indexed: kiln cat looks them up through the index.
            for (int i = 0; i < 400; i++) {
                Files.writeString(tree.resolve(String.format("n%03d", i)), "entry " + i + "\n");
            }
            Path tar = home.resolve("tree.tar");
            var made = ExternalTools.run(List.of("tar", "--format=posix", "--numeric-owner", "--owner=0", "--group=0",
                    "-C", home.resolve("tree").toString(), "-cf", tar.toString(), "."));
            assertEquals(0, made.exit(), made.out());
            var chown = ExternalTools.run(List.of("chown", "-R", user.uid() + ":" + user.gid(), home.toString()));
            assertEquals(0, chown.exit(), chown.out());

            for (String image : List.of("tar:" + tar, "dir:" + home.resolve("tree"))) {
                String out = home.resolve(image.startsWith("tar:") ? "user-tar.ext4" : "user-dir.ext4").toString();
                var build = user.run(home, "build", "--image", image, "-o", out, "--size", "256M", "--no-boot-check", "-q");
                assertEquals(0, build.exit(), build.out());
                ExternalTools.assertFsckClean(Path.of(out));
                for (String f : List.of("big3", "small7", "z-link")) {
                    Path dumped = home.resolve("dumped-" + f);
                    ExternalTools.debugfs(Path.of(out), "dump /data/" + f + " " + dumped);
                    assertArrayEquals(Files.readAllBytes(tree.resolve(f)), Files.readAllBytes(dumped), image + " /data/" + f);
                    Files.delete(dumped);
                }
                if (xattrs && image.startsWith("dir:")) {
                    for (String f : List.of("small9", "big4")) {
                        assertTrue(ExternalTools.debugfs(Path.of(out), "ea_list /data/" + f).contains("user.kiln ("
                                + ("value of " + f).length() + ") = \"value of " + f + "\""), image + " /data/" + f + ": its xattr");
                    }
                }
                assertTrue(ExternalTools.debugfs(Path.of(out), "htree /data").contains("Number of entries"),
                        image + ": /data should be indexed");
                for (int i : new int[] {0, 123, 399}) {
                    var cat = user.run(home, "cat", out, String.format("/data/n%03d", i));
                    assertEquals(0, cat.exit(), cat.out());
                    assertEquals("entry " + i + "\n", cat.out(), image + ": kiln cat as the user");
                }
                var missing = user.run(home, "cat", out, "/data/n400");
                assertTrue(missing.exit() != 0, image + ": a name not in the index is not found");
            }
            Path asRoot = home.resolve("root-tar.ext4");
            var root = CliRunner.run("build", "--image", "tar:" + tar, "-o", asRoot.toString(), "--size", "256M",
                    "--no-boot-check", "-q");
            assertEquals(0, root.exit(), root.err());
            assertEquals(-1L, Files.mismatch(asRoot, home.resolve("user-tar.ext4")), "the same image as root builds");
        } finally {
            ExternalTools.run(List.of("rm", "-rf", home.toString()));
        }
    }
}
