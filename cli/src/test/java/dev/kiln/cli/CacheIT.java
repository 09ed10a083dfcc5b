package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * kiln cache ls|prune against a real registry: what a moved tag left behind is listed as unused
 * and pruned, what a cached tag uses stays (an offline build still works), a blob changed on
 * disk after it was verified is hashed again and fetched anew.
 */
class CacheIT {
    @TempDir Path tmp;
    private static final ObjectMapper JSON = new ObjectMapper();

    private void publish(TestRegistry reg, String tag, String content, String cache) throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src-" + content + "/etc"));
        Files.writeString(src.resolve("version"), content + "\n");
        Path img = tmp.resolve(content + ".ext4");
        var b = CliRunner.run("build", "--image", "dir:" + src.getParent(), "-o", img.toString(), "--size", "16M", "-q");
        assertEquals(0, b.exit(), b.err());
        var p = CliRunner.run("push", img.toString(), reg.host + "/nex/base:" + tag, "--cache", cache, "-q");
        assertEquals(0, p.exit(), p.err());
    }

    private JsonNode ls(String cache) throws Exception {
        var r = CliRunner.run("cache", "ls", "--json", "--cache", cache);
        assertEquals(0, r.exit(), r.err());
        return JSON.readTree(r.out());
    }

    private CliRunner.Run build(TestRegistry reg, String cache, String pull) {
        return CliRunner.run("build", "--image", reg.host + "/nex/base:stable", "--cache", cache, "--pull", pull, "-o",
                tmp.resolve("out-" + System.nanoTime() + ".ext4").toString(), "--size", "32M", "-q");
    }

    @Test
    void pruneRemovesWhatNoCachedTagUses() throws Exception {
        String pushCache = tmp.resolve("push-cache").toString();
        String cache = tmp.resolve("cache").toString();
        try (TestRegistry reg = new TestRegistry(tmp.resolve("registry"))) {
            publish(reg, "stable", "one", pushCache);
            assertEquals(0, build(reg, cache, "missing").exit());
            JsonNode first = ls(cache);
            assertEquals(1, first.path("refs").size(), first.toString());
            List<String> firstBlobs = new ArrayList<>();
            first.path("blobs").forEach(b -> {
                assertTrue(b.path("referenced").asBoolean(), "all used: " + b);
                firstBlobs.add(b.path("digest").asText());
            });
            assertEquals(0, first.path("unreferencedBytes").asLong());

            publish(reg, "stable", "two", pushCache); // the tag moves
            assertEquals(0, build(reg, cache, "always").exit());
            JsonNode second = ls(cache);
            long stale = 0;
            for (JsonNode b : second.path("blobs")) {
                boolean old = firstBlobs.contains(b.path("digest").asText());
                // The empty config is shared by both artifacts; everything else of the first is stale.
                if (!b.path("referenced").asBoolean()) {
                    assertTrue(old, "only the old tag's blobs are unused: " + b);
                    stale += b.path("size").asLong();
                }
            }
            assertTrue(stale > 0, second.toString());
            assertEquals(stale, second.path("unreferencedBytes").asLong());

            var prune = CliRunner.run("cache", "prune", "--json", "--cache", cache);
            assertEquals(0, prune.exit(), prune.err());
            assertEquals(stale, JSON.readTree(prune.out()).path("bytes").asLong());
            JsonNode after = ls(cache);
            after.path("blobs").forEach(b -> assertTrue(b.path("referenced").asBoolean(), "pruned: " + b));
            assertEquals(0, build(reg, cache, "never").exit(), "what the tag uses is still cached");

            // A blob whose file changed after it was verified is hashed again, dropped and fetched anew.
            Path layer = null;
            for (JsonNode b : after.path("blobs")) {
                if (b.path("size").asLong() > 4096) {
                    layer = Path.of(cache, "blobs/sha256", b.path("digest").asText().substring(7));
                }
            }
            byte[] bytes = Files.readAllBytes(layer);
            bytes[bytes.length / 2] ^= 1;
            Files.write(layer, bytes);
            var offline = build(reg, cache, "never");
            assertFalse(offline.exit() == 0, "offline, the damaged blob is not used: " + offline.err());
            assertEquals(0, build(reg, cache, "missing").exit(), "online, it is fetched again");

            var all = CliRunner.run("cache", "prune", "--all", "--cache", cache);
            assertEquals(0, all.exit(), all.err());
            JsonNode empty = ls(cache);
            assertEquals(0, empty.path("blobs").size());
            assertEquals(0, empty.path("refs").size());
        }
    }
}
