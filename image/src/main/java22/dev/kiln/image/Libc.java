package dev.kiln.image;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The C library through the FFM API, for the Java 22+ classes ({@link HoleScan},
 * {@link XattrCalls}): downcall handles that can capture {@code errno}, and {@code errno}
 * read back. Usable only on Linux with native access enabled for kiln (the jar's manifest
 * says {@code Enable-Native-Access: ALL-UNNAMED}); otherwise {@link #downcall} returns null
 * and the callers fall back to what the Java 17 versions of them do.
 */
final class Libc {
    /** The layout of the state a call captures ({@code errno}); null when unavailable. */
    static final MemoryLayout STATE;
    private static final VarHandle ERRNO;
    private static final Linker LINKER;

    static {
        Linker linker = null;
        MemoryLayout state = null;
        VarHandle errno = null;
        if (System.getProperty("os.name", "").equals("Linux") && Libc.class.getModule().isNativeAccessEnabled()) {
            try {
                linker = Linker.nativeLinker();
                state = Linker.Option.captureStateLayout();
                errno = state.varHandle(MemoryLayout.PathElement.groupElement("errno"));
            } catch (RuntimeException | Error e) {
                linker = null;
            }
        }
        LINKER = linker;
        STATE = linker == null ? null : state;
        ERRNO = linker == null ? null : errno;
    }

    private Libc() {}

    /**
     * A handle on the C library's {@code name}; with {@code errno}, its first parameter is a
     * segment of {@link #STATE} that receives the call's {@code errno}. Null when the FFM API
     * cannot be used here or the function is missing.
     */
    static MethodHandle downcall(String name, FunctionDescriptor fd, boolean errno) {
        if (LINKER == null) {
            return null;
        }
        try {
            var symbol = LINKER.defaultLookup().find(name);
            if (symbol.isEmpty()) {
                return null;
            }
            return errno ? LINKER.downcallHandle(symbol.get(), fd, Linker.Option.captureCallState("errno"))
                    : LINKER.downcallHandle(symbol.get(), fd);
        } catch (RuntimeException | Error e) {
            return null;
        }
    }

    /** The {@code errno} a call captured in {@code state}. */
    static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }
}
