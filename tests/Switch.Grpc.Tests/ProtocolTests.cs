namespace Switch.Grpc.Tests;

public class GrpcTimeoutTests
{
    [Theory]
    [InlineData("1H", 36_000_000_000L)]
    [InlineData("2M", 1_200_000_000L)]
    [InlineData("3S", 30_000_000L)]
    [InlineData("100m", 1_000_000L)]
    [InlineData("250u", 2_500L)]
    [InlineData("1n", 1L)] // Rounded up to one tick: never shorter than asked.
    [InlineData("200n", 2L)]
    [InlineData("0m", 0L)]
    [InlineData("99999999H", 99_999_999L * 36_000_000_000L)]
    [InlineData("00000001S", 10_000_000L)]
    public void Parses_each_unit(string text, long ticks)
    {
        Assert.True(GrpcTimeout.TryParse(text, out var timeout));
        Assert.Equal(ticks, timeout.Ticks);
    }

    [Theory]
    [InlineData("")]
    [InlineData("S")]
    [InlineData("1")]
    [InlineData("123456789S")] // 9 digits: over the spec's 8.
    [InlineData("1s")]
    [InlineData("1x")]
    [InlineData("-1S")]
    [InlineData("1.5S")]
    [InlineData(" 1S")]
    [InlineData("1S ")]
    public void Rejects_malformed(string text)
    {
        Assert.False(GrpcTimeout.TryParse(text, out _));
    }

    [Theory]
    [InlineData(0L, "0n")]
    [InlineData(1L, "100n")]
    [InlineData(10_000L, "1000000n")]          // 1 ms
    [InlineData(10_000_000L, "1000000u")]      // 1 s: 1e9 n does not fit in 8 digits
    [InlineData(36_000_000_000L, "3600000m")]  // 1 h
    public void Formats_in_the_finest_unit_that_fits(long ticks, string expected)
    {
        Assert.Equal(expected, GrpcTimeout.Format(TimeSpan.FromTicks(ticks)));
    }

    [Fact]
    public void Format_never_shortens_and_always_parses_back()
    {
        var random = new Random(42);
        for (int i = 0; i < 10_000; i++)
        {
            var timeout = TimeSpan.FromTicks((long)(random.NextDouble() * TimeSpan.FromDays(3000).Ticks / Math.Pow(10, random.Next(0, 12))));
            string text = GrpcTimeout.Format(timeout);
            Assert.InRange(text.Length, 2, 9);
            Assert.True(GrpcTimeout.TryParse(text, out var back), text);
            Assert.True(back >= timeout, $"{timeout} -> {text} -> {back}");
        }
        Assert.True(GrpcTimeout.TryParse(GrpcTimeout.Format(TimeSpan.MaxValue), out _));
        Assert.Equal("0n", GrpcTimeout.Format(TimeSpan.FromSeconds(-5)));
    }
}

public class StatusMessageEncodingTests
{
    [Theory]
    [InlineData("", "")]
    [InlineData("plain text, punctuation ~!@#$^&*()", "plain text, punctuation ~!@#$^&*()")]
    [InlineData("50%", "50%25")]
    [InlineData("a\nb\tc", "a%0Ab%09c")]
    [InlineData("é", "%C3%A9")]
    [InlineData("\u007F", "%7F")]
    public void Encodes_per_spec(string detail, string wire)
    {
        Assert.Equal(wire, StatusMessageEncoding.Encode(detail));
        Assert.Equal(detail, StatusMessageEncoding.Decode(wire));
    }

    [Theory]
    [InlineData("日本語のエラー 100% ✓")]
    [InlineData("line1\r\nline2")]
    [InlineData("emoji 😀 and %41")]
    public void Round_trips_any_text(string detail)
    {
        string wire = StatusMessageEncoding.Encode(detail);
        Assert.All(wire, c => Assert.InRange(c, (char)0x20, (char)0x7E));
        Assert.Equal(detail, StatusMessageEncoding.Decode(wire));
    }

    [Theory]
    [InlineData("%")]
    [InlineData("abc%4")]
    [InlineData("%G1")]
    [InlineData("%C3")] // Not valid UTF-8 alone.
    public void Malformed_input_decodes_to_the_raw_text_without_throwing(string wire)
    {
        Assert.Equal(wire, StatusMessageEncoding.Decode(wire));
    }

    [Fact]
    public void Lowercase_hex_is_accepted()
    {
        Assert.Equal("é", StatusMessageEncoding.Decode("%c3%a9"));
    }
}

public class MetadataTests
{
    [Fact]
    public void Keys_are_validated_and_lower_cased()
    {
        var m = new Metadata().Add("X-Trace", "abc").Add("x-raw-bin", new byte[] { 1, 2 });
        Assert.Equal("abc", m.GetValue("x-trace"));
        Assert.Equal(new byte[] { 1, 2 }, m.GetBytes("x-raw-bin"));
        Assert.Throws<ArgumentException>(() => new Metadata().Add("grpc-status", "0"));
        Assert.Throws<ArgumentException>(() => new Metadata().Add("x-bin", "text"));
        Assert.Throws<ArgumentException>(() => new Metadata().Add("x-text", new byte[] { 1 }));
        Assert.Throws<ArgumentException>(() => new Metadata().Add("x-text", "line\nbreak"));
    }

    [Fact]
    public void Binary_values_accept_padded_and_unpadded_base64()
    {
        var m = new Metadata();
        m.AddFromWire("a-bin", "AQI");   // unpadded
        m.AddFromWire("b-bin", "AQI=");  // padded
        m.AddFromWire("c-bin", "!!");    // malformed: dropped, never fatal
        Assert.Equal(new byte[] { 1, 2 }, m.GetBytes("a-bin"));
        Assert.Equal(new byte[] { 1, 2 }, m.GetBytes("b-bin"));
        Assert.Null(m.GetBytes("c-bin"));
    }
}
