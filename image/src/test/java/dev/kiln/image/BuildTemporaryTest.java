package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
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
    }
}
