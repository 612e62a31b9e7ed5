namespace Switch.LoadGen.Tests;

/// <summary>Wrong options are refused with a message naming the option, before anything is started.</summary>
public sealed class CliTests
{
    private static RunOptions Parse(params string[] args) => Cli.Options(Cli.Build().Parse(["load", "--target", "http://127.0.0.1:1", .. args]), new Uri("http://127.0.0.1:1"));

    [Theory]
    [InlineData("--transport", "pigeon", "--transport")]
    [InlineData("--loop", "half", "--loop")]
    [InlineData("--profile", "sawtooth", "--profile")]
    [InlineData("--duration", "soon", "--duration")]
    [InlineData("--mix", "payment=x", "mix")]
    [InlineData("--banks", "12", "banks")]
    [InlineData("--institutions", "ALIPAY", "institutions")]
    [InlineData("--window", "0", "window")]
    [InlineData("--rate", "0", "rate")]
    [InlineData("--max-amount-fen", "10", "amounts")]
    [InlineData("--warm", "-1", "--warm")]
    public void A_wrong_option_is_refused_naming_it(string option, string value, string named)
    {
        var e = Assert.Throws<ArgumentException>(() => Parse(option, value));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void The_options_make_the_run_asked_for()
    {
        RunOptions surge = Parse("--profile", "surge", "--base-rate", "500", "--duration", "30s", "--streams", "6", "--window", "128");
        Assert.Equal(Transport.Stream, surge.Transport);
        Assert.Equal(6, surge.Lanes);
        Assert.Equal(128, surge.Window);
        var profile = Assert.IsType<SurgeProfile>(surge.Profile);
        Assert.Equal(5_000, profile.PeakPerSecond);
        Assert.Equal(30, profile.DurationSeconds, 9);

        RunOptions unary = Parse("--transport", "unary", "--loop", "closed", "--concurrency", "32", "--duration", "5s", "--mix", "payment=1,query=1");
        Assert.False(unary.OpenLoop);
        Assert.Equal(32, unary.Lanes);
        Assert.Equal(5, unary.ClosedSeconds);
        Assert.Equal([1, 0, 0, 1], unary.Workload.MixWeights);
    }
}
