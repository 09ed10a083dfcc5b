package dev.kiln.cli;

import dev.kiln.image.RegistrySource;
import dev.kiln.image.Sizes;
import dev.kiln.image.Sources;
import dev.kiln.image.registry.BlobCache;
import dev.kiln.image.registry.Credentials;
import dev.kiln.image.registry.RegistryClient;
import java.io.PrintWriter;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Option;

/** Options shared by commands that pull from registries. */
final class RegistryOptions {
    @Option(names = "--pull", paramLabel = "POLICY", defaultValue = "missing",
            description = "When to ask the registry: ${COMPLETION-CANDIDATES}: always, when not cached (default), never (offline).")
    Choices.Pull pull;

    @Option(names = "--creds", paramLabel = "USER:PASSWORD",
            description = "Registry credentials (else KILN_REGISTRY_USER/_PASSWORD, $REGISTRY_AUTH_FILE or ~/.docker/config.json).")
    String creds;

    @Option(names = "--cache", paramLabel = "DIR",
            description = "Blob cache (default: $XDG_CACHE_HOME/kiln, else ~/.cache/kiln).")
    java.nio.file.Path cache;

    @Option(names = "--insecure-registry", paramLabel = "HOST[:PORT]",
            description = "Allow plain HTTP to this registry (loopback always may); repeatable.")
    List<String> insecure = new java.util.ArrayList<>();

    Sources.Registry registry(PrintWriter err, boolean quiet) {
        RegistrySource.Pull p = switch (pull.name()) {
            case "always" -> RegistrySource.Pull.ALWAYS;
            case "missing" -> RegistrySource.Pull.MISSING;
            case "never" -> RegistrySource.Pull.NEVER;
            default -> throw new Errors.UsageException("--pull must be always, missing or never: " + pull);
        };
        Credentials c;
        try {
            c = Credentials.defaults(creds);
        } catch (IllegalArgumentException e) {
            throw new Errors.UsageException(e.getMessage());
        }
        RegistrySource.Listener listener = quiet ? null : new RegistrySource.Listener() {
            private final long[] reported = new long[4096];

            @Override
            public synchronized void progress(int layer, int layers, long layerBytes, long layerSize, long total,
                    long totalSize) {
                // A line when a layer completes, and every 32 MiB of a large one.
                boolean done = layerSize > 0 && layerBytes >= layerSize;
                int slot = Math.min(layer, reported.length - 1);
                if (done || layerBytes - reported[slot] >= (32L << 20)) {
                    reported[slot] = layerBytes;
                    err.printf(Locale.ROOT, "kiln: layer %d/%d: %s of %s; total %s of %s%n", layer, layers,
                            Sizes.human(layerBytes), Sizes.human(layerSize), Sizes.human(total), Sizes.human(totalSize));
                    err.flush();
                }
            }
        };
        return new Sources.Registry(new RegistryClient(c, new HashSet<>(insecure)), new BlobCache(cache != null ? cache : BlobCache.defaultRoot()),
                p, listener);
    }
}
