package dev.kiln.image;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.image.registry.BlobCache;
import dev.kiln.image.registry.ImageReference;
import dev.kiln.image.registry.RegistryClient;
import dev.kiln.image.registry.RegistryException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * An image pulled from a registry: manifest (and index, for the platform) resolved, blobs
 * fetched into the content-addressed cache — layers in parallel, a few at a time — while the
 * writer applies them in order as each arrives.
 */
public final class RegistrySource implements Source {
    /** When to ask the registry. */
    public enum Pull { ALWAYS, MISSING, NEVER }

    /** Download progress, per layer and in total. */
    public interface Listener {
        void progress(int layer, int layers, long layerBytes, long layerSize, long totalBytes, long totalSize);
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int PARALLEL = 3;

    private final ImageReference ref;
    private final OciSource.Platform platform;
    private final RegistryClient client;
    private final BlobCache cache;
    private final Pull pull;
    private final Listener listener;

    public RegistrySource(ImageReference ref, OciSource.Platform platform, RegistryClient client, BlobCache cache,
            Pull pull, Listener listener) {
        this.ref = ref;
        this.platform = platform;
        this.client = client;
        this.cache = cache;
        this.pull = pull;
        this.listener = listener;
    }

    @Override
    public String describe() {
        return ref.toString();
    }

    /** The resolved image: its manifest, config and layers. */
    public record Resolved(String manifestDigest, String manifestType, long manifestSize, String configDigest,
            List<OciSource.Layer> layers, List<Long> sizes) {}

    /** The top manifest's digest once resolved (for a build's provenance annotations), else null. */
    private volatile String resolvedDigest;

    @Override
    public String digest() {
        return resolvedDigest;
    }

    /** The top manifest: its digest and bytes, from the cache when allowed. */
    private Map.Entry<String, byte[]> topManifest() throws IOException {
        String digest = ref.digest();
        if (pull != Pull.ALWAYS) {
            String d = digest != null ? digest : cache.ref(ref);
            if (d != null && cache.has(d)) {
                return Map.entry(d, Files.readAllBytes(cache.path(d)));
            }
        }
        if (pull == Pull.NEVER) {
            throw new RegistryException(ref + ": not in the cache (" + cache.root() + ") and --pull never was given; "
                    + "pull it first or use --pull missing", 0);
        }
        RegistryClient.Manifest m = client.manifest(ref, ref.reference());
        String actual = BlobCache.sha256(m.bytes());
        if (digest != null && !digest.equals(actual)) {
            throw new RegistryException("registry " + ref.registry() + ", repository " + ref.repository()
                    + ": manifest digest mismatch: actual " + actual + " vs expected " + digest, 0);
        }
        cache.put(actual, m.bytes());
        if (ref.tag() != null) {
            cache.saveRef(ref, actual);
        }
        return Map.entry(actual, m.bytes());
    }

    /**
     * Asks for the top manifest only (the registry, or the cache as --pull allows) and returns
     * its digest: what the reference names now, without downloading any layer.
     */
    public String resolveDigest() throws IOException {
        resolvedDigest = topManifest().getKey();
        return resolvedDigest;
    }

    /** A kiln rootfs artifact (what kiln push publishes) as a base: the ext4 image inside is the source. */
    private dev.kiln.image.registry.RootfsArtifact.Parsed artifact() throws IOException {
        Map.Entry<String, byte[]> top = topManifest();
        OciJson.Manifest m = document(top.getValue(), top.getKey());
        if (!dev.kiln.image.registry.RootfsArtifact.is(m)) {
            return null;
        }
        resolvedDigest = top.getKey();
        return dev.kiln.image.registry.RootfsArtifact.parse(m, ref.toString());
    }

    private void applyArtifact(dev.kiln.image.registry.RootfsArtifact.Parsed a, Ext4Writer w) throws IOException {
        Path blob = fetch(a.layerDigest(), n -> progress.read = n);
        Path tmp = Build.temporary(cache.root(), ".kiln-base-", ".ext4");
        try {
            RootfsTransfer.unpack(blob, a.compression(), a.annotation(dev.kiln.image.registry.RootfsArtifact.SHA256),
                    a.annotation(dev.kiln.image.registry.RootfsArtifact.SIZE), a.layerDigest(), tmp, ref.toString());
            new Ext4Source(tmp).applyTo(w);
        } finally {
            Files.deleteIfExists(tmp);
            Build.untrack(tmp);
        }
    }

    public Resolved resolve() throws IOException {
        String digest = ref.digest();
        byte[] bytes = null;
        String type = null;
        if (pull != Pull.ALWAYS) {
            String d = digest != null ? digest : cache.ref(ref);
            if (d != null && cache.has(d)) {
                digest = d;
                bytes = Files.readAllBytes(cache.path(d));
            }
        }
        if (bytes == null) {
            if (pull == Pull.NEVER) {
                throw new RegistryException(ref + ": not in the cache (" + cache.root() + ") and --pull never was given; "
                        + "pull it first or use --pull missing", 0);
            }
            RegistryClient.Manifest m = client.manifest(ref, ref.reference());
            bytes = m.bytes();
            type = m.mediaType();
            String actual = BlobCache.sha256(bytes);
            if (digest != null && !digest.equals(actual)) {
                throw new RegistryException("registry " + ref.registry() + ", repository " + ref.repository()
                        + ": manifest digest mismatch: actual " + actual + " vs expected " + digest, 0);
            }
            digest = actual;
            cache.put(digest, bytes);
            if (ref.tag() != null) {
                cache.saveRef(ref, digest);
            }
        }
        OciJson.Manifest m = document(bytes, digest);
        type = m.mediaType() != null ? m.mediaType() : type == null ? "" : type;
        if (type.startsWith("application/vnd.docker.distribution.manifest.v1") || m.schemaVersion() == 1) {
            throw new RegistryException(ref + ": Docker schema 1 manifests are not supported; push the image again "
                    + "with a current Docker or skopeo", 0);
        }
        if (m.isIndex()) {
            for (OciJson.Descriptor c : m.manifests()) {
                if (platform.matches(c.platform())) {
                    String child = c.digest();
                    byte[] cb = manifestBlob(child);
                    OciJson.Manifest cm = document(cb, child);
                    String ct = c.mediaType() != null ? c.mediaType() : cm.mediaType() == null ? "" : cm.mediaType();
                    return layers(child, ct, cb.length, cm);
                }
            }
            throw new InvalidSourceException(ref + ": no image for platform " + platform + "; available: "
                    + String.join(", ", OciSource.Platform.available(m.manifests())) + " (choose one with --platform)");
        }
        return layers(digest, type, bytes.length, m);
    }

    private byte[] manifestBlob(String digest) throws IOException {
        if (pull != Pull.ALWAYS && cache.has(digest)) {
            return Files.readAllBytes(cache.path(digest));
        }
        if (pull == Pull.NEVER) {
            throw new RegistryException(ref + ": manifest " + digest + " is not in the cache and --pull never was given", 0);
        }
        RegistryClient.Manifest cm = client.manifest(ref, digest);
        String actual = BlobCache.sha256(cm.bytes());
        if (!actual.equals(digest)) {
            throw new RegistryException("registry " + ref.registry() + ", repository " + ref.repository()
                    + ": manifest digest mismatch: actual " + actual + " vs expected " + digest, 0);
        }
        cache.put(digest, cm.bytes());
        return cm.bytes();
    }

    private Resolved layers(String manifestDigest, String type, long size, OciJson.Manifest m) throws IOException {
        String configDigest = m.config() == null ? null : m.config().digest();
        if (configDigest == null) {
            throw new InvalidSourceException(ref + ": manifest has no config");
        }
        Path configPath = fetch(configDigest, l -> { });
        OciJson.Config config;
        try {
            config = OciJson.config(Files.readAllBytes(configPath));
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new InvalidSourceException(ref + ": config " + configDigest + " is not a valid image config ("
                    + e.getOriginalMessage() + ")", e);
        }
        List<OciSource.Layer> out = OciSource.layers(m, config, ref.toString());
        List<Long> sizes = new ArrayList<>();
        m.layers().forEach(l -> sizes.add(l.size()));
        return new Resolved(manifestDigest, type, size, configDigest, out, sizes);
    }

    private OciJson.Manifest document(byte[] bytes, String digest) {
        try {
            return OciJson.manifest(bytes);
        } catch (IOException e) {
            throw new InvalidSourceException(ref + ": manifest " + digest + " is not a valid OCI manifest or index ("
                    + e.getMessage().lines().findFirst().orElse("") + ")", e);
        }
    }

    private Path fetch(String digest, java.util.function.LongConsumer progress) throws IOException {
        if (pull == Pull.NEVER) {
            if (!cache.has(digest)) {
                throw new RegistryException(ref + ": blob " + digest + " is not in the cache and --pull never was given", 0);
            }
            return cache.path(digest);
        }
        return cache.fetch(client, ref, digest, progress);
    }

    /** Downloads every blob of the image (in parallel) and returns the resolution. */
    public Resolved download() throws IOException {
        Resolved r = resolve();
        List<Future<Path>> fs = startDownloads(r);
        try {
            for (Future<Path> f : fs) {
                await(f);
            }
        } finally {
            pool.shutdownNow();
        }
        return r;
    }

    private ExecutorService pool;

    private List<Future<Path>> startDownloads(Resolved r) {
        pool = Executors.newFixedThreadPool(PARALLEL, t -> {
            Thread th = new Thread(t, "kiln-pull");
            th.setDaemon(true);
            return th;
        });
        long total = r.sizes().stream().mapToLong(Long::longValue).sum();
        AtomicLongArray done = new AtomicLongArray(r.layers().size());
        List<Future<Path>> fs = new ArrayList<>();
        for (int i = 0; i < r.layers().size(); i++) {
            final int idx = i;
            String d = r.layers().get(i).digest();
            fs.add(pool.submit(() -> fetch(d, bytes -> {
                done.set(idx, bytes);
                if (listener != null) {
                    long sum = 0;
                    for (int k = 0; k < done.length(); k++) {
                        sum += done.get(k);
                    }
                    listener.progress(idx + 1, done.length(), bytes, r.sizes().get(idx), sum, total);
                }
            })));
        }
        return fs;
    }

    private static Path await(Future<Path> f) throws IOException {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException re) {
                throw re;
            }
            if (c instanceof IOException io) {
                throw io;
            }
            throw new IOException(c);
        }
    }

    private final Counting.Progress progress = new Counting.Progress();

    @Override
    public double fraction() {
        return progress.fraction();
    }

    @Override
    public void applyTo(Ext4Writer w) throws IOException {
        var artifact = artifact();
        if (artifact != null) {
            progress.total = artifact.layerSize();
            applyArtifact(artifact, w);
            return;
        }
        Resolved r = resolve();
        resolvedDigest = r.manifestDigest();
        progress.total = r.sizes().stream().mapToLong(Long::longValue).sum();
        List<Future<Path>> fs = startDownloads(r);
        try (Blobs blobs = Blobs.directory(cache.root())) {
            for (int i = 0; i < r.layers().size(); i++) {
                await(fs.get(i));
                OciSource.Layer l = r.layers().get(i);
                OciSource.applyLayer(blobs, l, w, ref + ": layer " + (i + 1) + "/" + r.layers().size() + " ("
                        + l.digest().substring(0, 19) + ")", progress);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    /** Downloads the layers (the build needs them anyway) and counts their content. */
    @Override
    public long[] estimate() throws IOException {
        var artifact = artifact();
        if (artifact != null) {
            String size = artifact.annotation(dev.kiln.image.registry.RootfsArtifact.SIZE);
            return new long[] {size == null ? artifact.layerSize() * 4 : Long.parseLong(size), 65536};
        }
        Resolved r = download();
        try (Blobs blobs = Blobs.directory(cache.root())) {
            return OciSource.estimate(blobs, r.layers(), describe());
        }
    }

    /** Saves the resolved image as an OCI layout at {@code dir} (kiln pull). */
    public Resolved saveLayout(Path dir) throws IOException {
        Resolved r = download();
        Files.createDirectories(dir.resolve("blobs/sha256"));
        List<String> digests = new ArrayList<>(List.of(r.manifestDigest(), r.configDigest()));
        r.layers().forEach(l -> digests.add(l.digest()));
        for (String d : digests) {
            Path to = dir.resolve(OciSource.blobPath(d));
            if (!Files.exists(to)) {
                Files.copy(cache.path(d), to);
            }
        }
        var layout = JSON.createObjectNode().put("imageLayoutVersion", "1.0.0");
        Files.write(dir.resolve("oci-layout"), JSON.writeValueAsBytes(layout));
        String type = r.manifestType().isEmpty() ? "application/vnd.oci.image.manifest.v1+json" : r.manifestType();
        String name = ref.tag() != null ? ref.tag() : ref.digest();
        var index = JSON.createObjectNode().put("schemaVersion", 2);
        var desc = index.putArray("manifests").addObject();
        desc.put("mediaType", type).put("digest", r.manifestDigest()).put("size", r.manifestSize());
        desc.putObject("platform").put("os", platform.os()).put("architecture", platform.arch());
        desc.putObject("annotations").put(OciSource.REF_NAME, name);
        Files.write(dir.resolve("index.json"), JSON.writeValueAsBytes(index));
        return r;
    }
}
