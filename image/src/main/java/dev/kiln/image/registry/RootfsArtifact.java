package dev.kiln.image.registry;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.TreeMap;

/**
 * A kiln root file system as an OCI artifact: an image manifest whose {@code artifactType} is
 * {@link #ARTIFACT_TYPE}, the empty config, and one layer holding the ext4 image (gzip, zstd or
 * as it is), with annotations that let a consumer check it before use.
 *
 * <pre>
 * artifactType  application/vnd.kiln.rootfs.v1
 * config        application/vnd.oci.empty.v1+json   "{}"
 * layer         application/vnd.kiln.rootfs.ext4.v1[+gzip|+zstd]
 * annotations   org.opencontainers.image.created, dev.kiln.rootfs.{size,sha256,block-size,
 *               features,uuid,label,source,source-digest}
 * </pre>
 */
public final class RootfsArtifact {
    private RootfsArtifact() {}

    public static final String MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
    public static final String ARTIFACT_TYPE = "application/vnd.kiln.rootfs.v1";
    public static final String LAYER_TYPE = "application/vnd.kiln.rootfs.ext4.v1";
    public static final String EMPTY_TYPE = "application/vnd.oci.empty.v1+json";
    public static final byte[] EMPTY = "{}".getBytes(StandardCharsets.US_ASCII);
    public static final String EMPTY_DIGEST = BlobCache.sha256(EMPTY);

    /** Annotation keys. */
    public static final String CREATED = "org.opencontainers.image.created";
    public static final String TITLE = "org.opencontainers.image.title";
    public static final String SIZE = "dev.kiln.rootfs.size";
    public static final String SHA256 = "dev.kiln.rootfs.sha256";
    public static final String BLOCK_SIZE = "dev.kiln.rootfs.block-size";
    public static final String FEATURES = "dev.kiln.rootfs.features";
    public static final String UUID = "dev.kiln.rootfs.uuid";
    public static final String LABEL = "dev.kiln.rootfs.label";
    public static final String SOURCE = "dev.kiln.rootfs.source";
    public static final String SOURCE_DIGEST = "dev.kiln.rootfs.source-digest";

    /** How the ext4 image is stored in the layer. */
    public enum Compression {
        GZIP("+gzip"), ZSTD("+zstd"), NONE("");

        private final String suffix;

        Compression(String suffix) {
            this.suffix = suffix;
        }

        public String mediaType() {
            return LAYER_TYPE + suffix;
        }

        /** The compression of a layer media type, or null when it is not a kiln rootfs layer. */
        public static Compression of(String mediaType) {
            for (Compression c : values()) {
                if (c.mediaType().equals(mediaType)) {
                    return c;
                }
            }
            return null;
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper().configure(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS, true);

    /** The manifest bytes, written deterministically (keys in a fixed order). */
    public static byte[] manifest(String layerDigest, long layerSize, Compression c, String title,
            Map<String, String> annotations) {
        ObjectNode m = JSON.createObjectNode();
        m.put("schemaVersion", 2);
        m.put("mediaType", MANIFEST_TYPE);
        m.put("artifactType", ARTIFACT_TYPE);
        ObjectNode config = m.putObject("config");
        config.put("mediaType", EMPTY_TYPE);
        config.put("digest", EMPTY_DIGEST);
        config.put("size", EMPTY.length);
        config.put("data", "e30=");
        ArrayNode layers = m.putArray("layers");
        ObjectNode l = layers.addObject();
        l.put("mediaType", c.mediaType());
        l.put("digest", layerDigest);
        l.put("size", layerSize);
        l.putObject("annotations").put(TITLE, title);
        ObjectNode a = m.putObject("annotations");
        new TreeMap<>(annotations).forEach(a::put);
        try {
            return JSON.writeValueAsBytes(m);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A parsed kiln rootfs manifest. */
    public record Parsed(String layerDigest, long layerSize, Compression compression, Map<String, String> annotations) {
        public String annotation(String key) {
            return annotations.get(key);
        }
    }

    /** Whether a manifest is a kiln rootfs artifact. */
    public static boolean is(dev.kiln.image.OciJson.Manifest m) {
        return ARTIFACT_TYPE.equals(m.artifactType())
                || (m.layers().size() == 1 && Compression.of(m.layers().get(0).type()) != null);
    }

    /** Reads a kiln rootfs manifest; {@code where} names it in errors. */
    public static Parsed parse(dev.kiln.image.OciJson.Manifest m, String where) {
        if (!is(m)) {
            String type = m.artifactType() != null ? m.artifactType()
                    : m.config() != null && m.config().mediaType() != null ? m.config().mediaType() : "?";
            throw new RegistryException(where + ": not a kiln root file system (artifactType " + type + "); kiln fetch takes "
                    + "what kiln push published", 0);
        }
        dev.kiln.image.OciJson.Descriptor l = m.layers().get(0);
        Compression c = Compression.of(l.type());
        if (c == null) {
            throw new RegistryException(where + ": layer media type " + l.type()
                    + " is not one kiln knows (" + LAYER_TYPE + "[+gzip|+zstd])", 0);
        }
        Map<String, String> a = new TreeMap<>(m.annotations() == null ? Map.of() : m.annotations());
        return new Parsed(l.digest(), l.size(), c, a);
    }
}
