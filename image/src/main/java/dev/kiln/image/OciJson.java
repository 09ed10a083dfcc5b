package dev.kiln.image;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.List;
import java.util.Map;

/**
 * The OCI image-spec documents kiln reads, as typed records: image manifests and indexes (one
 * record, since a document's {@code mediaType} is optional and an index is known by its
 * {@code manifests}), descriptors, platforms and the config's {@code rootfs}. Unknown fields
 * are ignored, as the spec requires of readers; a field of the wrong JSON type is an error.
 */
public final class OciJson {
    private OciJson() {}

    private static final class Holder {
        static final ObjectMapper JSON = new ObjectMapper()
                .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);
    }

    /** A platform as an index lists it. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record Platform(String os, String architecture, String variant) {
        /** os/architecture[/variant]. */
        @Override
        public String toString() {
            return os + "/" + architecture + (variant == null || variant.isEmpty() ? "" : "/" + variant);
        }
    }

    /** A content descriptor: what a manifest, index or layout points at. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record Descriptor(String mediaType, String digest, long size, Platform platform,
            Map<String, String> annotations, String artifactType, List<String> urls) {
        /** An annotation's value, or null. */
        public String annotation(String key) {
            return annotations == null ? null : annotations.get(key);
        }

        /** The media type, or "" when absent. */
        public String type() {
            return mediaType == null ? "" : mediaType;
        }
    }

    /** An image manifest or an image index. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record Manifest(int schemaVersion, String mediaType, String artifactType, Descriptor config,
            List<Descriptor> layers, List<Descriptor> manifests, Map<String, String> annotations) {
        /** An index (or Docker manifest list): it lists manifests rather than layers. */
        public boolean isIndex() {
            return manifests != null;
        }

        /** The layers, empty when none are listed. */
        @Override
        public List<Descriptor> layers() {
            return layers == null ? List.of() : layers;
        }

        /** The manifests an index lists, empty for an image manifest. */
        @Override
        public List<Descriptor> manifests() {
            return manifests == null ? List.of() : manifests;
        }

        /** An annotation's value, or null. */
        public String annotation(String key) {
            return annotations == null ? null : annotations.get(key);
        }
    }

    /** The part of an image config kiln needs: the layers' uncompressed digests. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record Config(RootFs rootfs) {
        /** The diff_ids, empty when absent. */
        public List<String> diffIds() {
            return rootfs == null || rootfs.diffIds == null ? List.of() : rootfs.diffIds;
        }
    }

    /** {@code rootfs} of an image config. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record RootFs(String type, @JsonProperty("diff_ids") List<String> diffIds) {}

    /** Reads a manifest or an index. */
    public static Manifest manifest(byte[] json) throws IOException {
        return Holder.JSON.readValue(json, Manifest.class);
    }

    /** Reads an image config. */
    public static Config config(byte[] json) throws IOException {
        return Holder.JSON.readValue(json, Config.class);
    }
}
