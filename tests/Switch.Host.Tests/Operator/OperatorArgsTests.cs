using Switch.Operator;

namespace Switch.Host.Tests.Operator;

/// <summary>The values operators type, parsed exactly or refused with the input named.</summary>
public sealed class OperatorArgsTests
{
    [Fact]
    public void Weights_take_basis_points_or_whole_basis_point_percentages()
    {
        Dictionary<string, int> w = OperatorArgs.Weights(["a=9500", "b=4.5%", "c=0.5%", "d=0%", "e=100%"]);
        Assert.Equal(9_500, w["a"]);
        Assert.Equal(450, w["b"]);
        Assert.Equal(50, w["c"]);
        Assert.Equal(0, w["d"]);
        Assert.Equal(10_000, w["e"]);
        Assert.Equal(1, OperatorArgs.Weights(["a=0.01%"])["a"]);
    }

    [Theory]
    [InlineData("a", "is not NAME=BPS")]
    [InlineData("=5000", "is not NAME=BPS")]
    [InlineData("a=", "is not NAME=BPS")]
    [InlineData("a=x", "is not a whole number")]
    [InlineData("a=12.5", "is not a whole number")]
    [InlineData("a=0.005%", "is not a whole number of basis points")]
    [InlineData("a=-1", "outside 0..10000")]
    [InlineData("a=10001", "outside 0..10000")]
    [InlineData("a=100.01%", "outside 0..10000")]
    [InlineData("a=99999999999999999999", "is not a whole number")]
    public void Bad_weights_are_usage_errors_naming_the_input(string item, string message)
    {
        var e = Assert.Throws<UsageException>(() => OperatorArgs.Weights([item]));
        Assert.Contains(message, e.Message);
        Assert.StartsWith("weights: ", e.Message);
    }

    [Fact]
    public void An_endpoint_given_twice_is_refused() =>
        Assert.Contains("given twice", Assert.Throws<UsageException>(() => OperatorArgs.Weights(["a=5000", "a=5000"])).Message);

    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("90s", 90_000)]
    [InlineData("10m", 600_000)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("24h", 86_400_000)]
    public void Durations_have_units(string text, long ms) => Assert.Equal(ms, OperatorArgs.DurationMs(text, "--over"));

    [Theory]
    [InlineData("")]
    [InlineData("10")]
    [InlineData("10d")]
    [InlineData("m")]
    [InlineData("0s")]
    [InlineData("25h")]
    [InlineData("-5s")]
    [InlineData("9999999999s")]
    public void Bad_durations_are_usage_errors(string text) =>
        Assert.StartsWith("--over: ", Assert.Throws<UsageException>(() => OperatorArgs.DurationMs(text, "--over")).Message);

    [Theory]
    [InlineData("102", true)]
    [InlineData("12", false)]
    [InlineData("1022", false)]
    [InlineData("10a", false)]
    public void Banks_are_three_digit_codes(string text, bool ok)
    {
        if (ok) Assert.Equal(text, OperatorArgs.Bank(text));
        else Assert.Throws<UsageException>(() => OperatorArgs.Bank(text));
    }

    [Fact]
    public void A_reason_is_required_printable_and_at_most_64_bytes()
    {
        Assert.Equal("INC-4521 move to DR", OperatorArgs.Reason("INC-4521 move to DR"));
        Assert.Throws<UsageException>(() => OperatorArgs.Reason(null));
        Assert.Throws<UsageException>(() => OperatorArgs.Reason("  "));
        Assert.Throws<UsageException>(() => OperatorArgs.Reason("line\nbreak"));
        Assert.Equal(new string('x', 64), OperatorArgs.Reason(new string('x', 64)));
        Assert.Throws<UsageException>(() => OperatorArgs.Reason(new string('x', 65)));
        Assert.Throws<UsageException>(() => OperatorArgs.Reason(new string('中', 22))); // 66 bytes of UTF-8
    }
}
