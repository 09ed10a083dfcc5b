package dev.kiln.cli;

import dev.kiln.image.OciSource;
import dev.kiln.image.RegistrySource;
import dev.kiln.image.Source;
import dev.kiln.image.Sources;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "pull",
        description = "Saves a registry image as an OCI layout, for offline and air-gapped builds (--image oci:DIR).")
final class PullCommand extends StandardOptions implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "REF", description = "e.g. alpine:3.20, ghcr.io/org/repo@sha256:...")
    String ref;

    @Option(names = "--to", paramLabel = "oci:DIR", required = true, description = "Where to write the layout.")
    String to;

    @Option(names = "--platform", paramLabel = "OS/ARCH[/VARIANT]", description = "Default: the host's.")
    String platform = OciSource.Platform.host().toString();

    @Option(names = {"-q", "--quiet"}, description = "No progress on stderr.") boolean quiet;

    @Option(names = "--json", description = "Print a JSON summary (digests, layers, layout) instead of the digest.")
    boolean json;

    @Option(names = "--stacktrace", hidden = true) boolean stacktrace;

    @Mixin RegistryOptions registry;

    @Override
    public Integer call() throws Exception {
        if (!to.startsWith("oci:") || to.length() == 4) {
            throw new Errors.UsageException("--to must be oci:DIR");
        }
        Path dir = Path.of(to.substring(4));
        if (Files.exists(dir) && Files.exists(dir.resolve("index.json"))) {
            throw new Errors.UsageException(dir + ": already holds an OCI layout; choose a new directory");
        }
        OciSource.Platform plat;
        try {
            plat = OciSource.Platform.parse(platform);
        } catch (IllegalArgumentException e) {
            throw new Errors.UsageException("--platform: " + e.getMessage());
        }
        Source s = Sources.parse(ref, plat, registry.registry(spec.commandLine().getErr(), quiet));
        if (!(s instanceof RegistrySource rs)) {
            throw new Errors.UsageException(ref + ": kiln pull takes a registry reference, e.g. alpine:3.20");
        }
        RegistrySource.Resolved r = rs.saveLayout(dir);
        if (!quiet) {
            spec.commandLine().getErr().println("kiln: saved " + rs.describe() + " (" + r.manifestDigest() + ") to oci:" + dir);
        }
        if (json) {
            java.util.Map<String, Object> j = new java.util.LinkedHashMap<>();
            j.put("reference", rs.describe());
            j.put("digest", r.manifestDigest());
            j.put("mediaType", r.manifestType());
            j.put("config", r.configDigest());
            java.util.List<java.util.Map<String, Object>> layers = new java.util.ArrayList<>();
            for (int i = 0; i < r.layers().size(); i++) {
                layers.add(java.util.Map.of("digest", r.layers().get(i).digest(), "size", r.sizes().get(i)));
            }
            j.put("layers", layers);
            j.put("layout", "oci:" + dir);
            Json.print(spec.commandLine().getOut(), j);
        } else {
            spec.commandLine().getOut().println(r.manifestDigest());
        }
        return Kiln.OK;
    }
}
