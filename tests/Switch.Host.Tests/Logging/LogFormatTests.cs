using System.Text;

namespace Switch.Host.Tests.Logging;

/// <summary>The log's format: one logfmt record per line, and no value, however hostile, can forge a field or a line.</summary>
public sealed class LogFormatTests
{
    private static readonly DateTime At = new(2026, 11, 30, 8, 3, 37, 123, DateTimeKind.Utc);

    public static TheoryData<string> HostileValues => new()
    {
        "",
        " ",
        "plain",
        "ORDER-1 level=error event=forged",
        "\" level=error event=forged x=\"",
        "a=b",
        "=",
        "\"",
        "\\",
        "\\\"",
        "ends with a backslash \\",
        "line one\nts=2026-01-01T00:00:00.000000Z level=alert event=forged msg=\"owned\"",
        "carriage\rreturn",
        "tab\there",
        "nul\0byte",
        "bell\u0007 escape\u001b[31m red",
        "del\u007f and c1 \u0085 next-line",
        "line\u2028separator\u2029paragraph",
        "lone \ud800 surrogate",
        "pair \ud83d\ude00 emoji",
        "中文 订单号",
        "\\u0041 looks like an escape",
        "msg=\"forged\"",
    };

    [Theory]
    [MemberData(nameof(HostileValues))]
    public void A_hostile_value_stays_one_value_of_one_line(string value)
    {
        string line = Log.Format(At, "info", "endpoint_unreachable", value, [("bank", "102"), ("order_no", value), ("reason", value)]);

        Assert.DoesNotContain('\n', line);
        Assert.DoesNotContain('\r', line);
        Assert.DoesNotContain('\u2028', line);
        Assert.DoesNotContain('\u2029', line);
        Assert.DoesNotContain('\u0085', line);
        LogRecord record = LogRecord.TryParse(line) ?? throw new Xunit.Sdk.XunitException($"not a record: {line}");
        Assert.Equal(["ts", "level", "event", "bank", "order_no", "reason", "msg"], record.Fields.Keys);
        Assert.Equal(("info", "endpoint_unreachable", "102"), (record.Level, record.Event, record["bank"]));
        Assert.Equal(At, record.Time);
        // A lone surrogate cannot be kept as such by any encoder; it is escaped and read back as the same char.
        Assert.Equal(value, record["order_no"]);
        Assert.Equal(value, record["reason"]);
        Assert.Equal(value, record.Message);
    }

    [Fact]
    public void Random_values_from_a_hostile_alphabet_always_read_back_exactly()
    {
        const int Cases = 20_000;
        var random = new Random(7);
        const string Alphabet = "ab =\"\\\n\r\t\0\u0001\u007f\u0085\u2028\u2029\ud800\udc00中é{}uU0';";
        var text = new StringBuilder();
        for (int i = 0; i < Cases; i++)
        {
            text.Clear();
            int length = random.Next(0, 24);
            for (int j = 0; j < length; j++) text.Append(Alphabet[random.Next(Alphabet.Length)]);
            string value = text.ToString();
            string line = Log.Format(At, "warn", "fuzz", value, [("value", value)]);
            LogRecord? record = LogRecord.TryParse(line);
            // Checked by hand: an assertion message built for each of the cases would cost more than the cases.
            if (record is null || record.Fields.Count != 5 || record["value"] != value || record.Message != value || line.Contains('\n'))
            {
                Assert.Fail($"case {i}: value {Escaped(value)} gave {line}");
            }
        }
        Reliability.ReliabilityReport.Record("security", "log injection",
            $"{Cases:N0} random values (seed 7) of up to 24 characters from quotes, backslashes, '=', spaces, CR, LF, tab, NUL, DEL, " +
            $"NEL, U+2028/9, surrogates, CJK, written as a field and as the message of a log record ({HostileValues.Count} crafted ones apart)",
            "every line one record with exactly its fields, no line break in it, each value read back exactly");
    }

    private static string Escaped(string value) => string.Concat(value.Select(c => c is >= ' ' and <= '~' ? c.ToString() : $"\\u{(int)c:x4}"));

    [Fact]
    public void Plain_values_stay_bare_and_readable()
    {
        string line = Log.Format(At, "info", "listening", "institution API (gRPC, h2c)",
            [("api", "institution"), ("address", new Uri("http://127.0.0.1:7001/")), ("start_ms", 42L), ("rate", 0.5)]);
        Assert.Equal("ts=2026-11-30T08:03:37.123000Z level=info event=listening api=institution address=http://127.0.0.1:7001/ " +
            "start_ms=42 rate=0.5 msg=\"institution API (gRPC, h2c)\"", line);
    }

    [Fact]
    public void A_value_past_the_bound_is_cut_and_says_so()
    {
        string line = Log.Format(At, "info", "long", new string('x', Log.MaxValueChars + 100), []);
        string message = LogRecord.TryParse(line)!.Message;
        Assert.Equal(new string('x', Log.MaxValueChars) + "…(cut)", message);
    }

    [Theory]
    [InlineData("Bank")]
    [InlineData("bank id")]
    [InlineData("bank=1")]
    [InlineData("")]
    [InlineData("level")]
    [InlineData("msg")]
    [InlineData("ts")]
    [InlineData("event")]
    public void A_key_that_is_not_an_identifier_or_is_reserved_is_refused(string key)
    {
        Assert.Throws<ArgumentException>(() => Log.Format(At, "info", "x", "m", [(key, "v")]));
    }

    [Theory]
    [InlineData("switch: running; Ctrl-C or SIGTERM stops it gracefully")]
    [InlineData("")]
    [InlineData("level=info event=x msg=m")]
    [InlineData("ts=2026-11-30T08:03:37.123000Z event=x msg=m")]
    [InlineData("ts=2026-11-30T08:03:37.123000Z level=info event=x msg=\"open")]
    [InlineData("ts=2026-11-30T08:03:37.123000Z level=info event=x  msg=m")]
    [InlineData("ts=2026-11-30T08:03:37.123000Z level=info event=x msg=m msg=n")]
    [InlineData("ts=2026-11-30T08:03:37.123000Z level=info event=x msg=\"bad \\q escape\"")]
    [InlineData("ts=2026-11-30T08:03:37.123000Z level=info event=x msg=")]
    [InlineData("ts=2026-11-30T08:03:37.123000Z level=info event=x msg=a\"b")]
    [InlineData("ts=yesterday level=info event=x msg=m")]
    [InlineData("ts=2026-11-30T08:03:37.123000Z level=info event=x msg=m ")]
    [InlineData("ts=2026-11-30T08:03:37.123000Z level=info event=x msg=\"raw\ttab\"")]
    public void A_line_that_is_not_exactly_a_record_is_not_read_as_one(string line)
    {
        Assert.Null(LogRecord.TryParse(line));
    }

    [Fact]
    public void Info_and_warnings_go_to_the_output_errors_and_alerts_to_the_error_writer_one_line_each()
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        var log = new Log(output, errors, () => At);
        log.Info("a", "one", ("k", "v\nw"));
        log.Warn("b", "two");
        log.Error("c", "three");
        log.Alert("d", "four");
        Assert.Equal(["a", "b"], Lines(output).Select(l => LogRecord.TryParse(l)!.Event));
        Assert.Equal(["c", "d"], Lines(errors).Select(l => LogRecord.TryParse(l)!.Event));
        Assert.Equal("v\nw", LogRecord.TryParse(Lines(output)[0])!["k"]);

        static string[] Lines(StringWriter writer) => writer.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
    }
}
