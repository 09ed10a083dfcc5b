package dev.kiln.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.image.RootfsTransfer;
import dev.kiln.image.registry.BlobCache;
import java.io.PrintWriter;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "fetch", sortOptions = false,
        description = {"Gets a published root file system onto this machine, as nex preflight does: from a registry "
            + "(what kiln push published) or an HTTP(S) URL of rootfs.ext4[.gz] with its .sha256 beside it.",
            "Downloads into the cache (resuming), checks every digest and the annotated sha256, verifies the file system, "
                    + "and only then moves it into place. A second fetch of the same digest downloads nothing."})
final class FetchCommand extends StandardOptions implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "REF|URL", description = "registry/repository:tag[@sha256:…], or https://…/rootfs.ext4.gz")
    String source;

    @Option(names = {"-o", "--output"}, paramLabel = "FILE", defaultValue = "rootfs.ext4",
            description = "Where the (uncompressed) image goes (default: ${DEFAULT-VALUE}).")
    Path output;

    @Option(names = "--digest", paramLabel = "sha256:HEX",
            description = "Accept only this: the manifest's digest for a registry, the file's sha256 for a URL.")
    String digest;

    @Option(names = "--json", description = "Print the result as JSON on stdout.")
    boolean json;

    @Option(names = {"-q", "--quiet"}, description = "Print nothing on stderr but errors.")
    boolean quiet;

    @Option(names = "--stacktrace", hidden = true) boolean stacktrace;

    @Mixin RegistryOptions registry;

    @Override
    public Integer call() throws Exception {
        if (digest != null && !digest.matches("sha256:[0-9a-f]{64}")) {
            throw new Errors.UsageException("--digest wants sha256: and 64 lowercase hex digits: " + digest);
        }
        Path abs = output.toAbsolutePath();
        if (Files.isDirectory(abs)) {
            throw new Errors.UsageException(abs + ": is a directory; give the image's file name");
        }
        if (!Files.isDirectory(abs.getParent())) {
            throw new dev.kiln.image.InvalidSourceException(abs.getParent() + ": no such directory; create it first");
        }
        PrintWriter err = spec.commandLine().getErr();
        java.util.function.Consumer<String> log = line -> {
            if (!quiet) {
                err.println(line);
                err.flush();
            }
        };
        RootfsTransfer.Fetched f;
        if (source.startsWith("http://") || source.startsWith("https://")) {
            BlobCache cache = new BlobCache(registry.cache != null ? registry.cache : BlobCache.defaultRoot());
            f = RootfsTransfer.fetchUrl(URI.create(source), digest, cache, abs, log);
        } else {
            var reg = registry.registry(err, quiet);
            f = RootfsTransfer.fetch(reg.client(), reg.cache(), PushCommand.reference(source), digest, abs, log);
        }
        if (!quiet) {
            err.println("kiln: fetched " + source + " to " + f.output() + " (" + f.sha256() + (f.downloaded() ? ""
                    : ", from the cache") + "); it passed kiln verify");
        }
        if (json) {
            Map<String, Object> j = new LinkedHashMap<>();
            j.put("output", f.output().toString());
            j.put("source", source);
            j.put("manifestDigest", f.manifestDigest());
            j.put("blobDigest", f.layerDigest());
            j.put("sha256", f.sha256());
            j.put("bytes", f.size());
            j.put("downloaded", f.downloaded());
            spec.commandLine().getOut().println(new ObjectMapper().writeValueAsString(j));
        }
        return Kiln.OK;
    }
}
