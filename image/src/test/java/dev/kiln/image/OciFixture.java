package dev.kiln.image;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.apache.commons.compress.compressors.gzip.GzipCompressorOutputStream;
import org.apache.commons.compress.compressors.zstandard.ZstdCompressorOutputStream;

/** Builds OCI layouts, OCI archives and docker-save archives in code, layer by layer. */
public final class OciFixture {
    /** One layer under construction. */
    public static final class Layer {
        private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        private final TarArchiveOutputStream tar;

        public Layer() {
            tar = new TarArchiveOutputStream(bytes, StandardCharsets.UTF_8.name());
            tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
        }

        public Layer dir(String name) throws IOException {
            TarArchiveEntry e = new TarArchiveEntry(name.endsWith("/") ? name : name + "/", TarConstants.LF_DIR);
            e.setMode(0040755);
            e.setModTime(1_700_000_000_000L);
            tar.putArchiveEntry(e);
            tar.closeArchiveEntry();
            return this;
        }

        public Layer file(String name, String content) throws IOException {
            return file(name, content, 0644);
        }

        public Layer file(String name, String content, int mode) throws IOException {
            byte[] b = content.getBytes(StandardCharsets.UTF_8);
            TarArchiveEntry e = new TarArchiveEntry(name);
            e.setMode(0100000 | mode);
            e.setSize(b.length);
            e.setModTime(1_700_000_000_000L);
            tar.putArchiveEntry(e);
            tar.write(b);
            tar.closeArchiveEntry();
            return this;
        }

        public Layer symlink(String name, String target) throws IOException {
            TarArchiveEntry e = new TarArchiveEntry(name, TarConstants.LF_SYMLINK);
            e.setLinkName(target);
            e.setMode(0120777);
            tar.putArchiveEntry(e);
            tar.closeArchiveEntry();
            return this;
        }

        public Layer hardLink(String name, String target) throws IOException {
            TarArchiveEntry e = new TarArchiveEntry(name, TarConstants.LF_LINK);
            e.setLinkName(target);
            tar.putArchiveEntry(e);
            tar.closeArchiveEntry();
            return this;
        }

        public Layer whiteout(String name) throws IOException {
            int slash = name.lastIndexOf('/');
            return file(name.substring(0, slash + 1) + ".wh." + name.substring(slash + 1), "");
        }

        public Layer opaque(String dir) throws IOException {
            return file(dir + "/.wh..wh..opq", "");
        }

        public byte[] finish() throws IOException {
            tar.finish();
            tar.close();
            return bytes.toByteArray();
        }
    }

    public enum Codec { NONE, GZIP, ZSTD }

    public static String sha256(byte[] b) throws Exception {
        return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    public static String blob(Path layout, byte[] b) throws Exception {
        String d = sha256(b);
        Path p = layout.resolve("blobs/sha256/" + d.substring(7));
        Files.createDirectories(p.getParent());
        Files.write(p, b);
        return d;
    }

    public static byte[] compress(byte[] tar, Codec codec) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (OutputStream c = switch (codec) {
            case NONE -> out;
            case GZIP -> new GzipCompressorOutputStream(out);
            case ZSTD -> new ZstdCompressorOutputStream(out);
        }) {
            c.write(tar);
        }
        return out.toByteArray();
    }

    /** Writes an image (config + manifest) into the layout's blobs and returns the manifest descriptor JSON. */
    public static String image(Path layout, List<byte[]> layerTars, Codec codec, String os, String arch) throws Exception {
        List<String> diffIds = new ArrayList<>();
        StringBuilder layers = new StringBuilder();
        for (byte[] t : layerTars) {
            diffIds.add(sha256(t));
            byte[] c = compress(t, codec);
            String d = blob(layout, c);
            String mt = "application/vnd.oci.image.layer.v1.tar" + (codec == Codec.GZIP ? "+gzip" : codec == Codec.ZSTD ? "+zstd" : "");
            layers.append(layers.length() > 0 ? "," : "").append("{\"mediaType\":\"").append(mt).append("\",\"digest\":\"")
                    .append(d).append("\",\"size\":").append(c.length).append('}');
        }
        String config = "{\"architecture\":\"" + arch + "\",\"os\":\"" + os + "\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":["
                + String.join(",", diffIds.stream().map(x -> "\"" + x + "\"").toList()) + "]},\"config\":{}}";
        byte[] cb = config.getBytes(StandardCharsets.UTF_8);
        String cd = blob(layout, cb);
        String manifest = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                + "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" + cd + "\",\"size\":"
                + cb.length + "},\"layers\":[" + layers + "]}";
        byte[] mb = manifest.getBytes(StandardCharsets.UTF_8);
        String md = blob(layout, mb);
        return "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" + md + "\",\"size\":" + mb.length
                + ",\"platform\":{\"os\":\"" + os + "\",\"architecture\":\"" + arch + "\"}";
    }

    public static void index(Path layout, List<String> descriptors) throws Exception {
        Files.writeString(layout.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        Files.writeString(layout.resolve("index.json"), "{\"schemaVersion\":2,\"manifests\":[" + String.join(",", descriptors) + "]}");
    }

    /** A descriptor with a tag annotation. */
    public static String tagged(String descriptor, String tag) {
        return descriptor + ",\"annotations\":{\"" + OciSource.REF_NAME + "\":\"" + tag + "\"}}";
    }

    /** Tars a directory tree (for oci-archive and docker-archive files). */
    public static Path tarDir(Path dir, Path out) throws Exception {
        try (TarArchiveOutputStream t = new TarArchiveOutputStream(Files.newOutputStream(out))) {
            t.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
            try (var walk = Files.walk(dir)) {
                for (Path p : (Iterable<Path>) walk.sorted()::iterator) {
                    if (p.equals(dir)) {
                        continue;
                    }
                    TarArchiveEntry e = new TarArchiveEntry(p.toFile(), dir.relativize(p).toString());
                    t.putArchiveEntry(e);
                    if (Files.isRegularFile(p)) {
                        Files.copy(p, t);
                    }
                    t.closeArchiveEntry();
                }
            }
        }
        return out;
    }
}
