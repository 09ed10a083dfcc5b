package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Files;
import java.nio.file.Path;
import dev.kiln.ext4.ExternalTools;

/**
 * The kernel and initramfs that tools/test-kernel.sh makes from Debian's cloud kernel (.ci/run
 * runs it). Missing: the test skips, or fails under CI=true.
 */
record TestKernel(Path kernel, Path initrd) {
    static final Path DIR = Path.of(System.getenv().getOrDefault("KILN_TEST_KERNEL", "/var/cache/kiln-it/kernel"));

    static TestKernel require() {
        Path k = DIR.resolve("vmlinuz");
        Path i = DIR.resolve("initramfs.cpio.gz");
        if (!Files.isRegularFile(k) || !Files.isRegularFile(i)) {
            need(false, "no test kernel in " + DIR + " (run tools/test-kernel.sh, or set KILN_TEST_KERNEL)");
        }
        return new TestKernel(k, i);
    }

    static void need(boolean ok, String reason) {
        if (ok) {
            return;
        }
        if ("true".equals(System.getenv("CI"))) {
            fail(reason + " — but CI=true, so it must be there");
        }
        ExternalTools.skip(reason);
    }

    /** The arguments that give kiln boot (or build --boot-test) this kernel. */
    String[] args() {
        return new String[] {"--kernel", kernel.toString(), "--initrd", initrd.toString()};
    }
}
