package dev.kiln.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.kiln.image.RootfsTransfer;
import dev.kiln.image.registry.ImageReference;
import dev.kiln.image.registry.RootfsArtifact;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "push", sortOptions = false,
        description = {"Publishes an image (rootfs.ext4 or .ext4.gz) to an OCI registry as a kiln rootfs artifact, after "
            + "checking it as kiln verify does.",
            "artifactType " + RootfsArtifact.ARTIFACT_TYPE + ", one layer " + RootfsArtifact.LAYER_TYPE
                    + "[+gzip|+zstd], annotations with the image's size, sha256, block size, features, UUID and label.",
            "Prints the manifest digest."})
final class PushCommand extends StandardOptions implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "IMAGE", description = "The image to publish.")
    Path image;

    @Parameters(index = "1", paramLabel = "REF", description = "Where: registry/repository:tag, e.g. ghcr.io/org/rootfs:1.2.")
    String ref;

    @Option(names = "--compress", paramLabel = "FORMAT", defaultValue = "gzip",
            description = "How the layer is stored: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}).")
    Choices.Compress compress;

    @Option(names = "--annotation", paramLabel = "KEY=VALUE", description = "An extra manifest annotation (repeatable).")
    List<String> annotations = new ArrayList<>();

    @Option(names = "--mount-from", paramLabel = "REPOSITORY",
            description = "Another repository of the same registry that may have the layer: it is mounted, not uploaded.")
    String mountFrom;

    @Option(names = "--json", description = "Print the result as JSON on stdout.")
    boolean json;

    @Option(names = {"-q", "--quiet"}, description = "Print nothing on stderr but errors.")
    boolean quiet;

    @Option(names = "--stacktrace", hidden = true) boolean stacktrace;

    @Mixin RegistryOptions registry;

    static RootfsArtifact.Compression compression(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "gzip" -> RootfsArtifact.Compression.GZIP;
            case "zstd" -> RootfsArtifact.Compression.ZSTD;
            case "none" -> RootfsArtifact.Compression.NONE;
            default -> throw new Errors.UsageException("--compress must be gzip, zstd or none: " + s);
        };
    }

    static ImageReference reference(String ref) {
        ImageReference r = ImageReference.parse(ref.startsWith("docker://") ? ref.substring(9) : ref);
        if (r.tag() == null && r.digest() == null) {
            throw new Errors.UsageException(ref + ": give a tag to push to, e.g. " + ref + ":1.0");
        }
        return r;
    }

    @Override
    public Integer call() throws Exception {
        if (!Files.isRegularFile(image)) {
            throw new java.nio.file.NoSuchFileException(image.toString());
        }
        Map<String, String> extra = new LinkedHashMap<>();
        for (String a : annotations) {
            int eq = a.indexOf('=');
            if (eq <= 0) {
                throw new Errors.UsageException("--annotation wants KEY=VALUE: " + a);
            }
            extra.put(a.substring(0, eq), a.substring(eq + 1));
        }
        return push(spec, registry, image, reference(ref), compression(compress.name()), extra, mountFrom, json, quiet);
    }

    /** Shared with build --push. */
    static int push(CommandSpec spec, RegistryOptions registry, Path image, ImageReference ref,
            RootfsArtifact.Compression c, Map<String, String> extra, String mountFrom, boolean json, boolean quiet)
            throws Exception {
        PrintWriter err = spec.commandLine().getErr();
        var reg = registry.registry(err, quiet);
        Path work = image.toAbsolutePath().getParent();
        RootfsTransfer.Pushed p = RootfsTransfer.push(reg.client(), ref, image, c, extra, mountFrom, work, line -> {
            if (!quiet) {
                err.println(line);
                err.flush();
            }
        });
        if (!quiet) {
            err.println("kiln: pushed " + image + " to " + ref + " (" + p.uploaded() + " blob(s) uploaded, " + p.skipped()
                    + " already there)");
        }
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            Map<String, Object> j = new LinkedHashMap<>();
            j.put("reference", p.reference());
            j.put("digest", p.digest());
            j.put("mediaType", RootfsArtifact.MANIFEST_TYPE);
            j.put("artifactType", RootfsArtifact.ARTIFACT_TYPE);
            j.put("layer", Map.of("mediaType", p.mediaType(), "digest", p.layerDigest(), "size", p.layerSize()));
            j.put("uploaded", p.uploaded());
            j.put("skipped", p.skipped());
            j.put("annotations", p.annotations());
            out.println(new ObjectMapper().enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS).writeValueAsString(j));
        } else {
            out.println(p.digest());
        }
        out.flush();
        return Kiln.OK;
    }
}
