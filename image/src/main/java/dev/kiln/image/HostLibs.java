package dev.kiln.image;

import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.Metadata;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;

/**
 * {@code --host-libs}: what a program from the host needs to start — its {@code #!} interpreter,
 * its ELF loader and shared libraries, transitively — copied from the host to the same paths
 * in the image, where the image has nothing there. For scratch and distro-less bases, where a
 * dynamically linked agent would otherwise find no loader and the kernel would panic.
 */
public final class HostLibs implements Source {
    private final Path program;
    private final Instant time;

    /**
     * @param program the host file whose needs are copied (the agent)
     * @param time the copies' times (the source date epoch)
     */
    public HostLibs(Path program, Instant time) {
        this.program = program;
        this.time = time;
    }

    @Override
    public String describe() {
        return "host libraries of " + program;
    }

    @Override
    public long[] estimate() throws IOException {
        long bytes = 0;
        List<Loader.Need> needs = needs();
        for (Loader.Need n : needs) {
            if (n.found() != null) {
                bytes += Files.size(Path.of(n.found()));
            }
        }
        return new long[] {bytes, needs.size() * 2L};
    }

    private List<Loader.Need> needs() throws IOException {
        return needs(p -> false);
    }

    private List<Loader.Need> needs(java.util.function.Predicate<String> provided) throws IOException {
        String arch = OciSource.Platform.host().arch();
        return new Loader(Loader.host(), arch).needs(program.toAbsolutePath().toString(), provided);
    }

    @Override
    public void applyTo(Ext4Writer w) throws IOException {
        for (Loader.Need n : needs(w::exists)) {
            if (n.found() == null) {
                throw new InvalidSourceException(n.neededBy() + ": needs " + n.name() + " (" + n.kind()
                        + "), which this machine does not have either; --host-libs can only copy what the host has");
            }
            if (w.exists(n.found())) {
                continue;
            }
            Path src = Path.of(n.found()).toRealPath();
            int mode = Files.isExecutable(src) ? 0755 : 0644;
            w.file(n.found(), Metadata.of(mode, time), src);
        }
    }
}
