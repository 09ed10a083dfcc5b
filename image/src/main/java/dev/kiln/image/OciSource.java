package dev.kiln.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.ext4.Ext4Writer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;

/**
 * Container images stored locally: an OCI image layout directory ({@code oci:DIR[:TAG|@DIGEST]}),
 * the same as a tar ({@code oci-archive:FILE}), or {@code docker save} output
 * ({@code docker-archive:FILE}, legacy {@code manifest.json} or the OCI form). Layers are applied
 * in order with OCI whiteout rules, straight from the blobs into the writer; every blob's digest
 * and every layer's diff_id is checked.
 */
public final class OciSource implements Source {
    private static final ObjectMapper JSON = new ObjectMapper();
    static final String REF_NAME = "org.opencontainers.image.ref.name";

    enum Kind { LAYOUT, ARCHIVE, DOCKER }

    private final Kind kind;
    private final Path path;
    private final String tag;
    private final String digest;
    private final Platform platform;

    /** os/arch[/variant]. */
    public record Platform(String os, String arch, String variant) {
        public static Platform parse(String s) {
            String[] p = s.split("/");
            if (p.length < 2 || p.length > 3 || p[0].isEmpty() || p[1].isEmpty()) {
                throw new IllegalArgumentException("platform must be os/arch[/variant], e.g. linux/amd64: " + s);
            }
            return new Platform(p[0], p[1], p.length == 3 ? p[2] : null);
        }

        public static Platform host() {
            String arch = switch (System.getProperty("os.arch").toLowerCase(Locale.ROOT)) {
                case "amd64", "x86_64" -> "amd64";
                case "aarch64", "arm64" -> "arm64";
                case "x86", "i386", "i686" -> "386";
                case "ppc64le" -> "ppc64le";
                case "s390x" -> "s390x";
                case "riscv64" -> "riscv64";
                default -> System.getProperty("os.arch");
            };
            return new Platform("linux", arch, null);
        }

        boolean matches(OciJson.Platform p) {
            if (p == null || !os.equals(p.os()) || !arch.equals(p.architecture())) {
                return false;
            }
            String v = p.variant() == null ? "" : p.variant();
            return variant == null ? v.isEmpty() || (arch.equals("arm64") && v.equals("v8")) : variant.equals(v);
        }

        @Override
        public String toString() {
            return os + "/" + arch + (variant == null ? "" : "/" + variant);
        }

        /** The platforms an index offers, as os/arch[/variant] (attestation entries left out). */
        static List<String> available(List<OciJson.Descriptor> manifests) {
            List<String> out = new ArrayList<>();
            for (OciJson.Descriptor c : manifests) {
                if (c.platform() == null) {
                    continue;
                }
                String name = c.platform().toString();
                if (!name.startsWith("unknown/")) {
                    out.add(name);
                }
            }
            return out;
        }
    }

    OciSource(Kind kind, Path path, String tag, String digest, Platform platform) {
        this.kind = kind;
        this.path = path;
        this.tag = tag;
        this.digest = digest;
        this.platform = platform;
    }

    @Override
    public String describe() {
        String prefix = switch (kind) {
            case LAYOUT -> "oci:";
            case ARCHIVE -> "oci-archive:";
            case DOCKER -> "docker-archive:";
        };
        return prefix + path + (tag != null ? ":" + tag : "") + (digest != null ? "@" + digest : "");
    }

    /** A layer to apply: where its bytes are and what they must hash to. */
    public record Layer(String name, String digest, String diffId) {}

    private final Counting.Progress progress = new Counting.Progress();

    @Override
    public double fraction() {
        return progress.fraction();
    }

    @Override
    public void applyTo(Ext4Writer w) throws IOException {
        try (Blobs blobs = kind == Kind.LAYOUT ? Blobs.directory(path) : Blobs.tar(path)) {
            List<Layer> layers = resolve(blobs);
            long total = 0;
            for (Layer l : layers) {
                total += blobs.size(l.name);
            }
            progress.total = total;
            int i = 0;
            for (Layer l : layers) {
                i++;
                applyLayer(blobs, l, w, describe() + ": layer " + i + "/" + layers.size() + " (" + shortDigest(l) + ")",
                        progress);
            }
        }
    }

    private static String shortDigest(Layer l) {
        String d = l.digest != null ? l.digest : l.diffId != null ? l.diffId : l.name;
        return d.length() > 19 ? d.substring(0, 19) : d;
    }

    /** The layers of the selected image, in order. */
    List<Layer> resolve(Blobs blobs) throws IOException {
        if (kind == Kind.DOCKER && !blobs.exists("index.json")) {
            return resolveDockerLegacy(blobs);
        }
        OciJson.Manifest index = document(blobs, "index.json", null);
        OciJson.Descriptor desc = select(index.manifests());
        OciJson.Manifest manifest = manifest(blobs, desc);
        return layersOf(blobs, manifest);
    }

    private OciJson.Descriptor select(List<OciJson.Descriptor> all) {
        if (all.isEmpty()) {
            throw new InvalidSourceException(describe() + ": index.json lists no images");
        }
        if (digest != null) {
            for (OciJson.Descriptor m : all) {
                if (digest.equals(m.digest())) {
                    return m;
                }
            }
            // A digest may also name a manifest inside a nested index; resolved later.
            return null;
        }
        if (tag != null) {
            List<String> tags = new ArrayList<>();
            for (OciJson.Descriptor m : all) {
                String t = m.annotation(REF_NAME);
                if (tag.equals(t)) {
                    return m;
                }
                if (t != null) {
                    tags.add(t);
                }
            }
            throw new InvalidSourceException(describe() + ": no image tagged '" + tag + "'; the layout has "
                    + (tags.isEmpty() ? "no tags" : "tags " + String.join(", ", tags)));
        }
        if (all.size() == 1) {
            return all.get(0);
        }
        // Several entries: a multi-platform layout written flat, or several tags.
        OciJson.Descriptor byPlatform = null;
        for (OciJson.Descriptor m : all) {
            if (platform.matches(m.platform())) {
                byPlatform = m;
                break;
            }
        }
        if (byPlatform != null) {
            return byPlatform;
        }
        List<String> names = new ArrayList<>();
        for (OciJson.Descriptor m : all) {
            names.add(m.annotation(REF_NAME) != null ? m.annotation(REF_NAME) : m.digest());
        }
        throw new InvalidSourceException(describe() + ": the layout holds several images (" + String.join(", ", names)
                + "); name one with :TAG or @DIGEST");
    }

    private OciJson.Manifest manifest(Blobs blobs, OciJson.Descriptor desc) throws IOException {
        String d = desc == null ? digest : desc.digest();
        OciJson.Manifest m = document(blobs, blobPath(d), d);
        String mt = m.mediaType() != null ? m.mediaType() : desc == null ? "" : desc.type();
        if (mt.contains("index") || mt.contains("manifest.list") || m.isIndex()) {
            for (OciJson.Descriptor c : m.manifests()) {
                if (platform.matches(c.platform())) {
                    return manifest(blobs, c);
                }
            }
            throw new InvalidSourceException(describe() + ": no image for platform " + platform + "; available: "
                    + String.join(", ", Platform.available(m.manifests())) + " (choose one with --platform)");
        }
        if (m.schemaVersion() == 1) {
            throw new InvalidSourceException(describe() + ": Docker schema 1 manifests are not supported; "
                    + "re-save the image with a current Docker or skopeo");
        }
        return m;
    }

    private List<Layer> layersOf(Blobs blobs, OciJson.Manifest manifest) throws IOException {
        String configDigest = manifest.config() == null ? null : manifest.config().digest();
        if (configDigest == null) {
            throw new InvalidSourceException(describe() + ": manifest has no config");
        }
        byte[] config = bytes(blobs, blobPath(configDigest), configDigest);
        try {
            return layers(manifest, OciJson.config(config), describe());
        } catch (IOException e) {
            throw new InvalidSourceException(describe() + ": config " + configDigest + " is not a valid image config ("
                    + e.getMessage().lines().findFirst().orElse("") + ")", e);
        }
    }

    /**
     * An image manifest's layers, paired with the config's diff_ids (which must match them one
     * for one); foreign layers served from other URLs are refused.
     */
    static List<Layer> layers(OciJson.Manifest manifest, OciJson.Config config, String what) {
        List<String> diffIds = config.diffIds();
        List<OciJson.Descriptor> layers = manifest.layers();
        if (diffIds.size() != layers.size()) {
            throw new InvalidSourceException(what + ": manifest lists " + layers.size() + " layers but the config "
                    + diffIds.size() + " diff_ids");
        }
        List<Layer> out = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) {
            String d = layers.get(i).digest();
            String mt = layers.get(i).type();
            if ((mt.contains("foreign") || mt.contains("nondistributable")) && layers.get(i).urls() != null) {
                throw new InvalidSourceException(what + ": layer " + d + " is a foreign layer served elsewhere; "
                        + "kiln reads only layers the image itself holds");
            }
            out.add(new Layer(blobPath(d), d, diffIds.get(i)));
        }
        return out;
    }

    private List<Layer> resolveDockerLegacy(Blobs blobs) throws IOException {
        JsonNode manifests = json(blobs, "manifest.json", null);
        JsonNode chosen = null;
        List<String> tags = new ArrayList<>();
        for (JsonNode m : manifests) {
            List<String> repoTags = new ArrayList<>();
            m.path("RepoTags").forEach(t -> repoTags.add(t.asText()));
            tags.addAll(repoTags);
            if (tag == null || repoTags.stream().anyMatch(t -> t.equals(tag) || t.endsWith(":" + tag))) {
                if (chosen != null && tag == null) {
                    throw new InvalidSourceException(describe() + ": the archive holds several images (" + String.join(", ", tags)
                            + "); name one with :TAG");
                }
                chosen = m;
            }
        }
        if (chosen == null) {
            throw new InvalidSourceException(describe() + ": no image tagged '" + tag + "'; the archive has "
                    + String.join(", ", tags));
        }
        String configName = chosen.path("Config").asText();
        JsonNode config = json(blobs, configName, null);
        JsonNode diffIds = config.path("rootfs").path("diff_ids");
        JsonNode layers = chosen.path("Layers");
        if (diffIds.size() != layers.size()) {
            throw new InvalidSourceException(describe() + ": manifest.json lists " + layers.size()
                    + " layers but the config " + diffIds.size() + " diff_ids");
        }
        List<Layer> out = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) {
            out.add(new Layer(layers.get(i).asText(), null, diffIds.get(i).asText()));
        }
        return out;
    }

    static String blobPath(String digest) {
        if (digest == null || !digest.matches("sha256:[0-9a-f]{64}")) {
            throw new InvalidSourceException("unsupported or malformed digest '" + digest + "'; only sha256 is supported");
        }
        return "blobs/sha256/" + digest.substring(7);
    }

    /** A manifest or index from the layout, its digest checked when known. */
    private OciJson.Manifest document(Blobs blobs, String name, String expectDigest) throws IOException {
        byte[] b = bytes(blobs, name, expectDigest);
        try {
            return OciJson.manifest(b);
        } catch (IOException e) {
            throw new InvalidSourceException(describe() + ": " + name + " is not a valid OCI manifest or index ("
                    + e.getMessage().lines().findFirst().orElse("") + ")", e);
        }
    }

    private byte[] bytes(Blobs blobs, String name, String expectDigest) throws IOException {
        byte[] b;
        try (InputStream in = blobs.open(name)) {
            b = in.readNBytes(64 << 20);
        }
        if (expectDigest != null) {
            String actual = "sha256:" + sha256(b);
            if (!actual.equals(expectDigest)) {
                throw new InvalidSourceException(describe() + ": " + name + " has digest " + actual + ", expected "
                        + expectDigest + "; the blob is corrupt");
            }
        }
        return b;
    }

    private JsonNode json(Blobs blobs, String name, String expectDigest) throws IOException {
        byte[] b = bytes(blobs, name, expectDigest);
        try {
            return JSON.readTree(b);
        } catch (IOException e) {
            throw new InvalidSourceException(describe() + ": " + name + " is not valid JSON (" + e.getMessage() + ")", e);
        }
    }

    private static String sha256(byte[] b) {
        return HexFormat.of().formatHex(newSha().digest(b));
    }

    private static MessageDigest newSha() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Streams one layer into the writer, checking its compressed digest and its diff_id. */
    static void applyLayer(Blobs blobs, Layer l, Ext4Writer w, String what) throws IOException {
        applyLayer(blobs, l, w, what, new Counting.Progress());
    }

    static void applyLayer(Blobs blobs, Layer l, Ext4Writer w, String what, Counting.Progress progress) throws IOException {
        MessageDigest compressed = newSha();
        MessageDigest uncompressed = newSha();
        try (InputStream raw = new Counting(blobs.open(l.name), progress)) {
            DigestInputStream c = new DigestInputStream(raw, compressed);
            InputStream un = Compression.decompress(c);
            DigestInputStream u = new DigestInputStream(un, uncompressed);
            // Inflating and both digests run on the read-ahead thread, beside the writing.
            try (InputStream ahead = Compression.readAhead(org.apache.commons.io.input.CloseShieldInputStream.wrap(u))) {
                // A compressed layer's size (0 when unknown): the parser thread serves large layers.
                TarSource.apply(ahead, w, what, new LayerRules(), blobs.size(l.name));
                // Whatever follows the tar's end marker still counts for the digests.
                ahead.transferTo(OutputStream.nullOutputStream());
            }
            c.transferTo(OutputStream.nullOutputStream());
        }
        check(what, "digest", l.digest, compressed);
        check(what, "diff_id", l.diffId, uncompressed);
    }

    private static void check(String what, String field, String expected, MessageDigest md) {
        if (expected == null) {
            return;
        }
        String actual = "sha256:" + HexFormat.of().formatHex(md.digest());
        if (!actual.equals(expected)) {
            throw new InvalidSourceException(what + ": " + field + " mismatch: actual " + actual + " vs expected "
                    + expected + "; the image is corrupt or was tampered with");
        }
    }

    /** Content bytes and entries of all layers (an upper bound: whiteouts are not subtracted). */
    @Override
    public long[] estimate() throws IOException {
        try (Blobs blobs = kind == Kind.LAYOUT ? Blobs.directory(path) : Blobs.tar(path)) {
            return estimate(blobs, resolve(blobs), describe());
        }
    }

    static long[] estimate(Blobs blobs, List<Layer> layers, String what) throws IOException {
        long[] total = new long[2];
        for (Layer l : layers) {
            try (InputStream in = blobs.open(l.name)) {
                long[] e = TarSource.scan(Compression.decompress(in), what + ": " + l.name);
                total[0] += e[0];
                total[1] += e[1];
            }
        }
        return total;
    }
}
