package dev.kiln.image.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.image.InvalidSourceException;
import org.junit.jupiter.api.Test;

class ImageReferenceTest {
    private static void is(String in, String registry, String repo, String tag, String digest) {
        ImageReference r = ImageReference.parse(in);
        assertEquals(new ImageReference(registry, repo, tag, digest), r, in);
    }

    @Test
    void normalisesAsDockerDoes() {
        String d = "sha256:" + "a".repeat(64);
        is("alpine", "docker.io", "library/alpine", "latest", null);
        is("alpine:3.20", "docker.io", "library/alpine", "3.20", null);
        is("synadia/nex-rootfs:alpine", "docker.io", "synadia/nex-rootfs", "alpine", null);
        is("docker://alpine", "docker.io", "library/alpine", "latest", null);
        is("ghcr.io/org/repo@" + d, "ghcr.io", "org/repo", null, d);
        is("ghcr.io/org/repo:v1@" + d, "ghcr.io", "org/repo", "v1", d);
        is("localhost:5000/nex/base", "localhost:5000", "nex/base", "latest", null);
        is("127.0.0.1:5000/nex/base:1", "127.0.0.1:5000", "nex/base", "1", null);
        is("localhost/x", "localhost", "x", "latest", null);
        assertEquals("registry-1.docker.io", ImageReference.parse("alpine").apiHost());
        assertEquals("ghcr.io", ImageReference.parse("ghcr.io/a/b").apiHost());
    }

    @Test
    void malformedReferencesSayWhy() {
        for (String bad : new String[] {"", "Alpine", "alpine:", "alpine@sha256:abc", "a//b", "alpine:bad tag", "-x",
            "host:port:5000/x", "repo@md5:" + "a".repeat(32)}) {
            InvalidSourceException e = assertThrows(InvalidSourceException.class, () -> ImageReference.parse(bad), bad);
            assertTrue(e.getMessage().contains("is not a valid image reference"), e.getMessage());
        }
    }
}
