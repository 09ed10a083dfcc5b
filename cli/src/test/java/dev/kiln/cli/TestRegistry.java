package dev.kiln.cli;

import dev.kiln.ext4.ExternalTools;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Debian's docker-registry on a free loopback port, storing under {@code dir}: anonymous, or
 * with htpasswd authentication for the user {@code kiln} with password {@code secret}.
 */
final class TestRegistry implements AutoCloseable {
    final String host;
    private final Process process;

    TestRegistry(Path dir) throws Exception {
        this(dir, false);
    }

    TestRegistry(Path dir, boolean auth) throws Exception {
        Path exe = ExternalTools.require("docker-registry");
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        host = "127.0.0.1:" + port;
        Files.createDirectories(dir);
        StringBuilder cfg = new StringBuilder("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                + "    rootdirectory: " + dir.resolve("data") + "\nhttp:\n  addr: " + host + "\n");
        if (auth) {
            ExternalTools.require("htpasswd");
            var h = ExternalTools.run(java.util.List.of("htpasswd", "-Bbn", "kiln", "secret"));
            if (h.exit() != 0) {
                throw new IllegalStateException("htpasswd: " + h.out());
            }
            Files.writeString(dir.resolve("htpasswd"), h.out().trim() + "\n");
            cfg.append("auth:\n  htpasswd:\n    realm: kiln\n    path: ").append(dir.resolve("htpasswd")).append('\n');
        }
        Files.writeString(dir.resolve("config.yml"), cfg);
        process = new ProcessBuilder(exe.toString(), "serve", dir.resolve("config.yml").toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("registry.log").toFile()).start();
        HttpClient http = HttpClient.newHttpClient();
        for (int i = 0; i < 100; i++) {
            try {
                http.send(HttpRequest.newBuilder(URI.create("http://" + host + "/v2/")).build(),
                        HttpResponse.BodyHandlers.discarding());
                return;
            } catch (IOException e) {
                Thread.sleep(100);
            }
        }
        close();
        throw new IllegalStateException("docker-registry did not start on " + host);
    }

    @Override
    public void close() {
        process.destroy();
        try {
            process.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
