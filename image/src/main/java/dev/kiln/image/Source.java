package dev.kiln.image;

import dev.kiln.ext4.Ext4Writer;
import java.io.IOException;

/** Where a build's entries come from: applied to a writer in one streaming pass. */
public interface Source {
    /** Streams every entry of this source into {@code writer}. */
    void applyTo(Ext4Writer writer) throws IOException;

    /**
     * Starts reading ahead (a directory walk, say) before the writer exists, so that the two
     * set-ups overlap; {@link #applyTo} follows, or {@link #abandon} if the build fails first.
     * Optional: {@link #applyTo} alone does the same.
     */
    default void start() throws IOException {
    }

    /** Stops what {@link #start} began, when {@link #applyTo} will not run. */
    default void abandon() {
    }

    /** A short description for messages, e.g. {@code tar:/tmp/rootfs.tar.gz}. */
    String describe();

    /**
     * How much of the source has been read, from 0 to 1, while {@link #applyTo} runs; negative
     * when unknown (a directory walk). Safe to call from another thread.
     */
    default double fraction() {
        return -1;
    }

    /**
     * What the user should know about how the source was read (once {@link #applyTo} ran), e.g.
     * what could not be read without root; the library never prints, the command does.
     */
    default java.util.List<String> notes() {
        return java.util.List.of();
    }

    /** The content digest of what was read (a registry image's manifest digest), once applied; null when unknown. */
    default String digest() {
        return null;
    }

    /** An upper estimate of the bytes of content and the number of entries, for --size auto. */
    default long[] estimate() throws IOException {
        return new long[] {0, 0};
    }
}
