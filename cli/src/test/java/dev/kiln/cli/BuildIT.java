package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.ExternalTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BuildIT {
    @TempDir Path tmp;

    @Test
    void checksumFileVerifiesWithSha256sumAndImageIsClean() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src/usr/bin"));
        Files.writeString(src.resolve("hello"), "#!/bin/sh\necho hello\n");
        for (String out : List.of("rootfs.ext4", "rootfs.ext4.gz")) {
            var r = CliRunner.run("build", "--image", "dir:" + tmp.resolve("src"), "-o", tmp.resolve(out).toString(), "-q");
            assertEquals(0, r.exit(), r.err());
            var check = ExternalTools.run(List.of("sh", "-c", "cd '" + tmp + "' && sha256sum -c " + out + ".sha256"));
            assertEquals(0, check.exit(), check.out());
            assertTrue(check.out().contains(out + ": OK"), check.out());
        }
        ExternalTools.assertFsckClean(tmp.resolve("rootfs.ext4"));
    }

    @Test
    void tarballOfARealSystemDirectoryBuildsClean() throws Exception {
        // /etc of the build machine: thousands of real names, symlinks and modes.
        Path tar = tmp.resolve("etc.tar.gz");
        var t = ExternalTools.run(List.of("tar", "--ignore-failed-read", "-czf", tar.toString(), "-C", "/", "etc"));
        assertTrue(t.exit() == 0 || t.exit() == 1, t.out());
        Path out = tmp.resolve("etc.ext4");
        var r = CliRunner.run("build", "--image", "tar:" + tar, "-o", out.toString(), "--size", "256M", "-q");
        assertEquals(0, r.exit(), r.err());
        ExternalTools.assertFsckClean(out);
    }
}
