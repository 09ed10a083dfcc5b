package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.ext4.Ext4Writer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The build's temporary files: named by process id and counter, owner-only, never reused. */
class BuildTemporaryTest {
    @TempDir
    Path dir;

    @Test
    void thePidFromProcSelfIsTheJdksPid() {
        assertEquals(ProcessHandle.current().pid(), Build.pid());
    }

    @Test
    void temporaryFilesAreNewOwnerOnlyAndNamedByPid() throws Exception {
        Path a = Build.temporary(dir, ".out.", ".tmp");
        Path b = Build.temporary(dir, ".out.", ".tmp");
        assertNotEquals(a, b);
        assertTrue(a.getFileName().toString().startsWith(".out." + ProcessHandle.current().pid() + "-"), a.toString());
        assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(a)));
        // A name left by an earlier process with the same id is skipped, not reused.
        String next = a.getFileName().toString().replaceAll("-\\d+\\.tmp$", "");
        long seq = Long.parseLong(b.getFileName().toString().replaceAll("^.*-(\\d+)\\.tmp$", "$1"));
        Path taken = Files.createFile(dir.resolve(next + "-" + (seq + 1) + ".tmp"));
        Path c = Build.temporary(dir, ".out.", ".tmp");
        assertNotEquals(taken, c);
        assertTrue(Files.exists(c) && Files.size(taken) == 0);
        for (Path p : new Path[] {a, b, c}) {
            Build.untrack(p);
        }
    }

    @Test
    void aTemporaryFileIsTrackedAsItIsMadeAndNoneIsMadeAfterTheCleanUp() throws Exception {
        Path a = Build.temporary(dir, ".out.", ".tmp");
        try {
            Build.removeTemporaryFiles(); // what the shutdown hook runs on Ctrl-C
            assertFalse(Files.exists(a), "removed by the clean-up without a separate track() call");
            assertThrows(java.io.InterruptedIOException.class, () -> Build.temporary(dir, ".out.", ".tmp"),
                    "a file made after the clean-up would be left behind");
        } finally {
            Build.resumeAfterRemovingTemporaryFiles();
            Build.untrack(a);
        }
        try (var left = Files.list(dir)) {
            assertEquals(List.of(), left.toList());
        }
    }

    @Test
    void anImageRemovedByTheCleanUpWhileTheSourceStartsIsNotWrittenAgain() throws Exception {
        Path out = dir.resolve("rootfs.ext4");
        // The interrupt comes while the first source starts (a dir: walk does, before the writer
        // exists): the clean-up removes the temporary image, which the writer must not re-create.
        Source interrupted = new Source() {
            @Override
            public String describe() {
                return "interrupted";
            }

            @Override
            public void start() {
                Build.removeTemporaryFiles();
            }

            @Override
            public void applyTo(Ext4Writer w) throws IOException {
                w.file("/f", dev.kiln.ext4.Metadata.of(0644, java.time.Instant.EPOCH),
                        "x".getBytes(java.nio.charset.StandardCharsets.UTF_8));
            }
        };
        try {
            Build b = Build.builder().source(interrupted).output(out)
                    .options(Ext4Options.builder(16L << 20).build()).build();
            assertThrows(OutputException.class, b::run, "the temporary image is gone: the build cannot go on");
        } finally {
            Build.resumeAfterRemovingTemporaryFiles();
        }
        try (var left = Files.list(dir)) {
            assertEquals(List.of(), left.toList(), "no image and no temporary file once the clean-up has run");
        }
    }
}
