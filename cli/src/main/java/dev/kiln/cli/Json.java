package dev.kiln.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;

/** The CLI's --json output: every document is written by Jackson, one line per document. */
final class Json {
    private Json() {}

    /** Created on first use, so commands without --json never load Jackson's databind. */
    private static final class Holder {
        static final ObjectMapper MAPPER = new ObjectMapper();
    }

    static String write(Object value) {
        try {
            return Holder.MAPPER.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write JSON", e);
        }
    }

    static void print(PrintWriter out, Object value) {
        out.println(write(value));
        out.flush();
    }
}
