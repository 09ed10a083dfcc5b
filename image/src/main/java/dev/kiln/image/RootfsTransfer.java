package dev.kiln.image;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.Ext4Verifier;
import dev.kiln.image.registry.BlobCache;
import dev.kiln.image.registry.ImageReference;
import dev.kiln.image.registry.RegistryClient;
import dev.kiln.image.registry.RegistryException;
import dev.kiln.image.registry.RootfsArtifact;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Publishing a built image to an OCI registry ({@code kiln push}) and getting it onto a node
 * ({@code kiln fetch}), the way {@code nex preflight} downloads its vetted root file system:
 * pinned by digest, resumable, every byte checked, the file system verified, and only then
 * moved into place.
 */
public final class RootfsTransfer {
    private static final ObjectMapper JSON = new ObjectMapper();

    private RootfsTransfer() {}

    /** What a push did: the manifest's digest, the layer, and how many blobs went up. */
    public record Pushed(String reference, String digest, String layerDigest, long layerSize, String mediaType,
            int uploaded, int skipped, Map<String, String> annotations, byte[] manifest) {}

    /** What a fetch gave. */
    public record Fetched(Path output, String manifestDigest, String layerDigest, String sha256, long size,
            boolean downloaded) {}

    /** The facts about an ext4 image a consumer checks before use, as annotations. */
    public static Map<String, String> annotations(Path raw, String sha256, long size) throws IOException {
        Map<String, String> a = new LinkedHashMap<>();
        try (Ext4Reader r = Ext4Reader.open(raw)) {
            var sb = r.superblock();
            a.put(RootfsArtifact.CREATED, Instant.ofEpochSecond(sb.mkfsTime()).toString());
            a.put(RootfsArtifact.SIZE, Long.toString(size));
            a.put(RootfsArtifact.SHA256, "sha256:" + sha256);
            a.put(RootfsArtifact.BLOCK_SIZE, Integer.toString(r.blockSize()));
            a.put(RootfsArtifact.FEATURES, String.join(" ", r.features()));
            a.put(RootfsArtifact.UUID, uuid(sb.uuid()));
            a.put(RootfsArtifact.LABEL, r.label());
        }
        return a;
    }

    static String uuid(byte[] b) {
        String h = HexFormat.of().formatHex(b);
        return h.substring(0, 8) + "-" + h.substring(8, 12) + "-" + h.substring(12, 16) + "-" + h.substring(16, 20) + "-"
                + h.substring(20);
    }

    /**
     * Pushes an image ({@code rootfs.ext4} or {@code .ext4.gz}) as a kiln rootfs artifact. The
     * image is verified first; blobs the repository has are not uploaded again, and with
     * {@code mountFrom} the layer is mounted from that repository of the same registry.
     */
    public static Pushed push(RegistryClient client, ImageReference ref, Path image, RootfsArtifact.Compression c,
            Map<String, String> extra, String mountFrom, Path work, Consumer<String> log) throws IOException {
        List<Path> temps = new java.util.ArrayList<>();
        try {
            Path raw = image;
            if (isGzip(image)) {
                raw = Build.temporary(work, ".kiln-push-", ".ext4");
                temps.add(raw);
                try (InputStream in = new java.util.zip.GZIPInputStream(Files.newInputStream(image), 1 << 16)) {
                    sparseCopy(in, raw);
                } catch (java.io.EOFException | java.util.zip.ZipException e) {
                    throw new InvalidSourceException(image + ": not a complete gzip file (" + e.getMessage() + ")", e);
                }
            }
            verified(raw, image + " was not pushed");
            String sha = BlobCache.sha256(raw).substring(7);
            long size = Files.size(raw);
            Map<String, String> a = annotations(raw, sha, size);
            a.putAll(extra);
            Path blob = raw;
            if (c != RootfsArtifact.Compression.NONE) {
                blob = Build.temporary(work, ".kiln-push-", c == RootfsArtifact.Compression.GZIP ? ".gz" : ".zst");
                temps.add(blob);
                log.accept("kiln: compressing " + image.getFileName() + " (" + c.name().toLowerCase(java.util.Locale.ROOT)
                        + ")");
                if (c == RootfsArtifact.Compression.GZIP) {
                    ParallelGzip.compress(raw, blob, java.util.zip.Deflater.DEFAULT_COMPRESSION);
                } else {
                    try (InputStream in = Files.newInputStream(raw);
                            OutputStream out = Compression.zstdOutput(Files.newOutputStream(blob, StandardOpenOption.WRITE,
                            StandardOpenOption.TRUNCATE_EXISTING))) {
                        in.transferTo(out);
                    }
                }
            }
            String layerDigest = BlobCache.sha256(blob);
            long layerSize = Files.size(blob);
            int uploaded = 0;
            int skipped = 0;
            if (client.hasBlob(ref, RootfsArtifact.EMPTY_DIGEST)) {
                skipped++;
            } else {
                client.uploadBlob(ref, RootfsArtifact.EMPTY_DIGEST, RootfsArtifact.EMPTY);
                uploaded++;
            }
            if (client.hasBlob(ref, layerDigest)) {
                log.accept("kiln: the registry has " + layerDigest + " already; not uploaded again");
                skipped++;
            } else if (mountFrom != null && client.mountBlob(ref, layerDigest, mountFrom)) {
                log.accept("kiln: mounted " + layerDigest + " from " + mountFrom);
                skipped++;
            } else {
                log.accept("kiln: uploading " + layerDigest + " (" + Sizes.human(layerSize) + ")");
                client.uploadBlob(ref, layerDigest, blob);
                uploaded++;
            }
            String name = image.getFileName().toString().replaceFirst("\\.gz$", "");
            byte[] manifest = RootfsArtifact.manifest(layerDigest, layerSize, c, name, a);
            String digest = BlobCache.sha256(manifest);
            String given = client.putManifest(ref, ref.tag() != null ? ref.tag() : digest, manifest,
                    RootfsArtifact.MANIFEST_TYPE);
            if (given != null && !given.equals(digest)) {
                throw new RegistryException("registry " + ref.registry() + ": stored the manifest as " + given
                        + " but it hashes to " + digest, 0);
            }
            return new Pushed(ref.toString(), digest, layerDigest, layerSize, c.mediaType(), uploaded, skipped, a, manifest);
        } finally {
            for (Path t : temps) {
                Files.deleteIfExists(t);
                Build.untrack(t);
            }
        }
    }

    /** A manifest by tag or digest, through the cache when it is pinned by digest. */
    static byte[] manifest(RegistryClient client, BlobCache cache, ImageReference ref, String pin) throws IOException {
        String want = pin != null ? pin : ref.digest();
        if (want != null && cache.has(want)) {
            return Files.readAllBytes(cache.path(want));
        }
        // By the reference as given: a pin is checked against what the tag names now.
        RegistryClient.Manifest m = client.manifest(ref, ref.reference());
        String actual = BlobCache.sha256(m.bytes());
        if (ref.digest() != null && !ref.digest().equals(actual)) {
            throw new RegistryException(ref + ": the registry served a manifest with digest " + actual, 0);
        }
        if (pin != null && !pin.equals(actual)) {
            throw new InvalidSourceException(ref + " is " + actual + " now, not the pinned --digest " + pin
                    + "; nothing was fetched (check which image the tag should be)");
        }
        cache.put(actual, m.bytes());
        return m.bytes();
    }

    /** The annotations of a published rootfs, read from its manifest alone (no blob is downloaded). */
    public static Map<String, Object> describe(RegistryClient client, BlobCache cache, ImageReference ref)
            throws IOException {
        byte[] m = manifest(client, cache, ref, null);
        OciJson.Manifest j = document(m, ref);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("reference", ref.toString());
        out.put("digest", BlobCache.sha256(m));
        out.put("mediaType", j.mediaType() == null ? "" : j.mediaType());
        out.put("artifactType", j.artifactType() == null ? "" : j.artifactType());
        if (RootfsArtifact.is(j)) {
            RootfsArtifact.Parsed p = RootfsArtifact.parse(j, ref.toString());
            out.put("layer", Map.of("mediaType", p.compression().mediaType(), "digest", p.layerDigest(), "size",
                    p.layerSize()));
            out.put("annotations", p.annotations());
        } else {
            out.put("annotations", new java.util.TreeMap<>(j.annotations() == null ? Map.of() : j.annotations()));
        }
        return out;
    }

    /**
     * Fetches a published rootfs into {@code out}: manifest (pinned by {@code pin} when given),
     * layer into the cache (resuming a partial download), decompressed and checked against the
     * annotated sha256 and size, verified, then moved into place atomically.
     */
    public static Fetched fetch(RegistryClient client, BlobCache cache, ImageReference ref, String pin, Path out,
            Consumer<String> log) throws IOException {
        byte[] manifest = manifest(client, cache, ref, pin);
        String manifestDigest = BlobCache.sha256(manifest);
        RootfsArtifact.Parsed p = RootfsArtifact.parse(document(manifest, ref), ref.toString());
        if (ref.tag() != null) {
            cache.saveRef(ref, manifestDigest);
        }
        boolean downloaded = !cache.has(p.layerDigest());
        Path partial = cache.path(p.layerDigest()).resolveSibling(cache.path(p.layerDigest()).getFileName() + ".partial");
        if (downloaded && Files.exists(partial)) {
            log.accept("kiln: resuming the download of " + p.layerDigest() + " at " + Files.size(partial) + " bytes");
        }
        Path layer = cache.fetch(client, ref, p.layerDigest(), n -> { });
        Fetched f = install(layer, p.compression(), p.annotation(RootfsArtifact.SHA256), p.annotation(RootfsArtifact.SIZE),
                out, manifestDigest, p.layerDigest(), downloaded, ref.toString());
        return f;
    }

    /**
     * Fetches {@code rootfs.ext4[.gz]} from a plain HTTP(S) URL, checked against the
     * {@code URL.sha256} beside it (as {@code sha256sum} writes it) or against {@code pin}.
     */
    public static Fetched fetchUrl(URI url, String pin, BlobCache cache, Path out, Consumer<String> log)
            throws IOException {
        HttpClient http = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NORMAL)
                .connectTimeout(Duration.ofSeconds(30)).build();
        String expected = pin;
        URI sumUrl = URI.create(url + ".sha256");
        HttpResponse<byte[]> sum = send(http, HttpRequest.newBuilder(sumUrl).GET().build(),
                HttpResponse.BodyHandlers.ofByteArray(), sumUrl);
        if (sum.statusCode() == 200) {
            String text = new String(sum.body(), java.nio.charset.StandardCharsets.UTF_8).trim();
            String hex = text.split("\\s+")[0].toLowerCase(java.util.Locale.ROOT);
            if (!hex.matches("[0-9a-f]{64}")) {
                throw new InvalidSourceException(sumUrl + ": not a sha256sum line: " + text.lines().findFirst().orElse(""));
            }
            String published = "sha256:" + hex;
            if (pin != null && !pin.equals(published)) {
                throw new InvalidSourceException(url + ": the published checksum is " + published + ", not the pinned --digest "
                        + pin + "; nothing was fetched");
            }
            expected = published;
        } else if (pin == null) {
            throw new InvalidSourceException(sumUrl + ": HTTP " + sum.statusCode() + "; without a checksum beside the image "
                    + "kiln does not trust it: give --digest sha256:HEX");
        }
        boolean downloaded = !cache.has(expected);
        Path blob = cache.path(expected);
        if (downloaded) {
            Files.createDirectories(blob.getParent());
            Path partial = blob.resolveSibling(blob.getFileName() + ".partial");
            long offset = Files.exists(partial) ? Files.size(partial) : 0;
            if (offset > 0) {
                log.accept("kiln: resuming the download of " + url + " at " + offset + " bytes");
            }
            HttpRequest.Builder rb = HttpRequest.newBuilder(url).GET();
            if (offset > 0) {
                rb.header("Range", "bytes=" + offset + "-");
            }
            HttpResponse<InputStream> r = send(http, rb.build(), HttpResponse.BodyHandlers.ofInputStream(), url);
            if (r.statusCode() != 200 && r.statusCode() != 206) {
                r.body().close();
                throw new RegistryException(url + ": HTTP " + r.statusCode(), r.statusCode());
            }
            boolean append = r.statusCode() == 206;
            try (InputStream in = r.body(); OutputStream o = Files.newOutputStream(partial, StandardOpenOption.CREATE,
                    append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
                in.transferTo(o);
            }
            String actual = BlobCache.sha256(partial);
            if (!actual.equals(expected)) {
                Files.deleteIfExists(partial);
                throw new InvalidSourceException(url + ": downloaded data has " + actual + " but " + (pin != null
                        ? "--digest pins " : "its .sha256 says ") + expected + "; nothing was installed");
            }
            Files.move(partial, blob, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
        RootfsArtifact.Compression c = isGzip(blob) ? RootfsArtifact.Compression.GZIP : RootfsArtifact.Compression.NONE;
        return install(blob, c, c == RootfsArtifact.Compression.NONE ? expected : null, null, out, null, expected,
                downloaded, url.toString());
    }

    private static <T> HttpResponse<T> send(HttpClient http, HttpRequest req, HttpResponse.BodyHandler<T> h, URI what) {
        try {
            return http.send(req, h);
        } catch (IOException e) {
            throw new RegistryException(what + ": " + e.getClass().getSimpleName() + (e.getMessage() == null ? ""
                    : " " + e.getMessage()) + "; check the URL and the network", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RegistryException(what + ": interrupted", e);
        }
    }

    /** Decompresses (or copies) a checked blob next to {@code out}, checks it, and moves it into place. */
    private static Fetched install(Path blob, RootfsArtifact.Compression c, String sha256, String size, Path out,
            String manifestDigest, String layerDigest, boolean downloaded, String what) throws IOException {
        Path abs = out.toAbsolutePath();
        Path tmp = Build.temporary(abs.getParent(), "." + abs.getFileName() + ".", ".tmp");
        boolean done = false;
        try {
            String actual = unpack(blob, c, sha256, size, layerDigest, tmp, what);
            verified(tmp, what + " was not installed");
            Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
            Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            done = true;
            return new Fetched(abs, manifestDigest, layerDigest, actual, Files.size(abs), downloaded);
        } finally {
            Build.untrack(tmp);
            if (!done) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    /**
     * Decompresses (or copies) a blob whose digest was checked into {@code tmp}, checking the
     * content against the annotated sha256 and size; returns the content's digest.
     */
    static String unpack(Path blob, RootfsArtifact.Compression c, String sha256, String size, String layerDigest, Path tmp,
            String what) throws IOException {
        String actual;
        if (c == RootfsArtifact.Compression.NONE) {
            // The layer's digest is the content's: copy (copy_file_range, a reflink where the file system can).
            try (FileChannel from = FileChannel.open(blob); FileChannel to = FileChannel.open(tmp,
                    StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                long n = from.size();
                for (long pos = 0; pos < n; ) {
                    pos += from.transferTo(pos, n - pos, to);
                }
            }
            actual = layerDigest;
        } else {
            MessageDigest md = sha256();
            try (InputStream raw = new BufferedInputStream(Files.newInputStream(blob), 1 << 16);
                    InputStream in = new DigestInputStream(c == RootfsArtifact.Compression.GZIP
                            ? new java.util.zip.GZIPInputStream(raw, 1 << 16)
                            : Compression.zstdInput(raw), md)) {
                sparseCopy(in, tmp);
            } catch (java.io.EOFException | java.util.zip.ZipException e) {
                throw new InvalidSourceException(what + ": the image does not decompress (" + e.getMessage() + ")", e);
            }
            actual = "sha256:" + HexFormat.of().formatHex(md.digest());
        }
        if (sha256 != null && !sha256.equals(actual)) {
            throw new InvalidSourceException(what + ": the image decompresses to " + actual + ", not the annotated "
                    + sha256 + "; not installed");
        }
        if (size != null && !size.equals(Long.toString(Files.size(tmp)))) {
            throw new InvalidSourceException(what + ": the image is " + Files.size(tmp) + " bytes, not the annotated "
                    + size + "; not installed");
        }
        return actual;
    }

    /** The structural check of {@code kiln verify}; a problem refuses the image. */
    static void verified(Path raw, String consequence) throws IOException {
        List<Ext4Verifier.Problem> problems;
        try (Ext4Reader r = Ext4Reader.open(raw)) {
            problems = Ext4Verifier.verify(r);
        } catch (dev.kiln.ext4.CorruptImageException e) {
            throw new InvalidSourceException(consequence + ": not a sound ext4 image (" + e.getMessage() + ")", e);
        }
        if (!problems.isEmpty()) {
            throw new InvalidSourceException(consequence + ": it fails kiln verify (" + problems.size() + " problems, first: "
                    + problems.get(0) + ")");
        }
    }

    static boolean isGzip(Path p) throws IOException {
        try (InputStream in = Files.newInputStream(p)) {
            return in.read() == 0x1f && in.read() == 0x8b;
        }
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Copies a stream into an existing file (a temporary one, never brought back once an
     * interrupt removed it), leaving holes for all-zero 4 KiB blocks (images are mostly empty).
     */
    static void sparseCopy(InputStream in, Path to) throws IOException {
        try (FileChannel out = FileChannel.open(to, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            byte[] buf = new byte[1 << 20];
            long pos = 0;
            int n;
            while ((n = in.readNBytes(buf, 0, buf.length)) > 0) {
                for (int off = 0; off < n; off += 4096) {
                    int len = Math.min(4096, n - off);
                    if (!zero(buf, off, len)) {
                        out.write(java.nio.ByteBuffer.wrap(buf, off, len), pos + off);
                    }
                }
                pos += n;
            }
            if (out.size() < pos) {
                out.write(java.nio.ByteBuffer.wrap(new byte[1]), pos - 1);
            }
        }
    }

    private static boolean zero(byte[] b, int off, int len) {
        for (int i = off; i < off + len; i++) {
            if (b[i] != 0) {
                return false;
            }
        }
        return true;
    }

    private static OciJson.Manifest document(byte[] manifest, ImageReference ref) {
        try {
            return OciJson.manifest(manifest);
        } catch (IOException e) {
            throw new RegistryException(ref + ": the manifest is not a valid OCI manifest ("
                    + e.getMessage().lines().findFirst().orElse("") + ")", 0);
        }
    }
}
