package dev.kiln.image;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarFile;

/** Named files of an image: a directory (OCI layout) or an uncompressed tar (oci-archive, docker save). */
abstract class Blobs implements Closeable {
    abstract InputStream open(String name) throws IOException;

    abstract boolean exists(String name);

    /** The size of a named file, or 0 when unknown. */
    abstract long size(String name) throws IOException;

    abstract String describe();

    static Blobs directory(Path dir) {
        return new Blobs() {
            @Override
            InputStream open(String name) throws IOException {
                Path p = dir.resolve(name).normalize();
                if (!p.startsWith(dir.normalize())) {
                    throw new InvalidSourceException(describe() + ": path " + name + " leaves the layout");
                }
                try {
                    return Files.newInputStream(p);
                } catch (NoSuchFileException e) {
                    throw new InvalidSourceException(describe() + ": missing " + name + "; the layout is incomplete");
                }
            }

            @Override
            boolean exists(String name) {
                return Files.exists(dir.resolve(name));
            }

            @Override
            long size(String name) throws IOException {
                Path p = dir.resolve(name);
                return Files.exists(p) ? Files.size(p) : 0;
            }

            @Override
            String describe() {
                return dir.toString();
            }

            @Override
            public void close() {}
        };
    }

    /** Random access into an uncompressed tar by entry name. */
    static Blobs tar(Path file) throws IOException {
        TarFile tf;
        try {
            tf = new TarFile(file);
        } catch (IOException | IllegalArgumentException e) {
            throw new InvalidSourceException(file + ": not a readable (uncompressed) tar archive (" + e.getMessage() + ")", e);
        }
        Map<String, TarArchiveEntry> entries = new HashMap<>();
        for (TarArchiveEntry e : tf.getEntries()) {
            entries.put(LayerRules.normalize(e.getName()).substring(1), e);
        }
        return new Blobs() {
            @Override
            InputStream open(String name) throws IOException {
                TarArchiveEntry e = entries.get(LayerRules.normalize(name).substring(1));
                if (e == null) {
                    throw new InvalidSourceException(describe() + ": missing " + name + " in the archive");
                }
                return tf.getInputStream(e);
            }

            @Override
            boolean exists(String name) {
                return entries.containsKey(LayerRules.normalize(name).substring(1));
            }

            @Override
            long size(String name) {
                TarArchiveEntry e = entries.get(LayerRules.normalize(name).substring(1));
                return e == null ? 0 : e.getSize();
            }

            @Override
            String describe() {
                return file.toString();
            }

            @Override
            public void close() throws IOException {
                tf.close();
            }
        };
    }
}
