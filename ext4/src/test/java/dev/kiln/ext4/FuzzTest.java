package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Randomly damaged images fed to the reader and the verifier: every run must end with a result
 * or a clean error (CorruptImageException, or NoSuchFileException for a lost path), quickly and
 * without running out of memory. The seed is printed so a failure can be replayed.
 */
class FuzzTest {
    @TempDir Path tmp;

    @Test
    void mutatedImagesNeverHangOrCrash() throws Exception {
        Path base = tmp.resolve("base.ext4");
        try (Ext4Writer w = Ext4Writer.create(base, Ext4Options.builder(4L << 20).blockSize(1024).build())) {
            TestTree.everything().writeTo(w);
            for (int i = 0; i < 120; i++) {
                w.file("/wide/name-" + i, Metadata.of(0644, java.time.Instant.EPOCH), i, new java.io.ByteArrayInputStream(new byte[i]));
            }
        }
        byte[] clean = Files.readAllBytes(base);
        long seed = Long.getLong("kiln.fuzz.seed", 20261202L);
        int runs = Integer.getInteger("kiln.fuzz.runs", 300);
        System.out.println("FuzzTest seed " + seed + " (replay with -Dkiln.fuzz.seed=" + seed + ")");
        Random rnd = new Random(seed);
        // The metadata lives in the first ~700 blocks of this image: damage there is what matters.
        int metaEnd = Math.min(clean.length, 700 * 1024);
        Path img = tmp.resolve("fuzz.ext4");
        for (int run = 0; run < runs; run++) {
            byte[] b = clean.clone();
            int flips = 1 + rnd.nextInt(rnd.nextBoolean() ? 4 : 64);
            for (int i = 0; i < flips; i++) {
                int off = rnd.nextInt(metaEnd);
                switch (rnd.nextInt(3)) {
                    case 0 -> b[off] ^= (byte) (1 << rnd.nextInt(8));
                    case 1 -> b[off] = (byte) rnd.nextInt(256);
                    default -> b[off] = (byte) (rnd.nextBoolean() ? 0xFF : 0);
                }
            }
            Files.write(img, b);
            final int r = run;
            Boolean ours = assertTimeoutPreemptively(Duration.ofSeconds(10), () -> exercise(img),
                    () -> "run " + r + " seed " + seed);
            if (e2fsck != null && run < AGREEMENT_RUNS) {
                var f = ExternalTools.run(java.util.List.of("e2fsck", "-fn", img.toString()));
                boolean theirs = f.exit() == 0 && !f.out().contains("Fix?") && !f.out().contains("Clear?")
                        && !f.out().contains("WARNING") && !f.out().contains("trying backup blocks");
                if (theirs != ours && System.getProperty("kiln.fuzz.keep") != null) {
                    Files.copy(img, Path.of(System.getProperty("kiln.fuzz.keep"), "fuzz-" + seed + "-" + run + ".ext4"),
                            java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                }
                if (theirs != ours) {
                    disagreements.add("run " + run + ": e2fsck " + (theirs ? "clean" : "damaged") + ", kiln "
                            + (ours ? "clean" : "damaged") + ": " + f.out().lines().skip(1).limit(3).toList());
                }
            }
        }
        if (!disagreements.isEmpty()) {
            org.junit.jupiter.api.Assertions.fail(disagreements.size() + " disagreement(s) with e2fsck -fn (seed " + seed
                    + "):\n" + String.join("\n", disagreements));
        }
    }

    /** Runs whose verdict is compared with e2fsck -fn's, when e2fsck is installed (CI installs it). */
    private static final int AGREEMENT_RUNS = 200;
    private final java.util.List<String> disagreements = new java.util.ArrayList<>();
    private static final Path e2fsck = java.util.stream.Stream.of("/usr/sbin/e2fsck", "/sbin/e2fsck")
            .map(Path::of).filter(Files::isExecutable).findFirst().orElse(null);

    /** Reads everything and verifies; true when kiln finds the image clean. */
    private static boolean exercise(Path img) throws Exception {
        try (Ext4Reader r = Ext4Reader.open(img)) {
            try {
                r.walk((p, st) -> {
                    if (st.isRegular()) {
                        try (InputStream in = r.open(st.ino())) {
                            // A damaged size can make a legitimately huge sparse file; read a bounded prefix.
                            byte[] buf = new byte[1 << 16];
                            long total = 0;
                            int n;
                            while (total < (16 << 20) && (n = in.read(buf)) > 0) {
                                total += n;
                            }
                        }
                    } else if (st.isSymlink()) {
                        r.readLink(st.ino());
                    }
                    r.xattrs(st.ino());
                });
            } catch (CorruptImageException | java.nio.file.NoSuchFileException e) {
                // a clean error
            }
            return Ext4Verifier.verify(r).isEmpty();
        } catch (CorruptImageException | java.nio.file.NoSuchFileException e) {
            return false; // a clean error
        }
    }
}
