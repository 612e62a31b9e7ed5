using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Switch.Host.Tests.Admin;

/// <summary>
/// A scrape of /metrics read strictly (exposition format 0.0.4): every sample after its family's TYPE, each family
/// typed once, histogram series (_bucket, _sum, _count) under a histogram; values by "name{labels}".
/// </summary>
public sealed class PrometheusText
{
    private static readonly Regex Sample = new("""^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$""");

    public Dictionary<string, string> Types { get; } = new();
    /// <summary>"name{labels}" (labels as written) to value.</summary>
    public Dictionary<string, double> Values { get; } = new();
    public string Text { get; }

    public PrometheusText(string text)
    {
        Text = text;
        Assert.EndsWith("\n", text);
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# HELP ", StringComparison.Ordinal)) continue;
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                string[] parts = line.Split(' ');
                Assert.Equal(4, parts.Length);
                Assert.Contains(parts[3], new[] { "gauge", "counter", "histogram" });
                Assert.True(Types.TryAdd(parts[2], parts[3]), $"TYPE given twice for {parts[2]}");
                continue;
            }
            Match m = Sample.Match(line);
            Assert.True(m.Success, $"not a Prometheus sample line: '{line}'");
            string name = m.Groups[1].Value;
            string family = Types.ContainsKey(name) ? name : Regex.Replace(name, "_(bucket|sum|count)$", "");
            Assert.True(Types.ContainsKey(family), $"sample before its TYPE line: '{line}'");
            if (family != name) Assert.Equal("histogram", Types[family]);
            string key = line[..line.LastIndexOf(' ')];
            Assert.True(Values.TryAdd(key, double.Parse(m.Groups[5].Value, CultureInfo.InvariantCulture)), $"sample given twice: '{key}'");
        }
    }

    public static async Task<PrometheusText> ScrapeAsync(HttpClient http)
    {
        using HttpResponseMessage response = await http.GetAsync("/metrics");
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        return new PrometheusText(await response.Content.ReadAsStringAsync());
    }

    /// <summary>The value of one series; 0 when absent (a counter's child not created yet reads as 0).</summary>
    public double this[string series] => Values.GetValueOrDefault(series);

    /// <summary>The sum over every series of the family whose labels contain all of <paramref name="labels"/>.</summary>
    public double Sum(string name, params string[] labels) => Values
        .Where(kv => (kv.Key == name || kv.Key.StartsWith(name + "{", StringComparison.Ordinal)) && labels.All(l => kv.Key.Contains(l, StringComparison.Ordinal)))
        .Sum(kv => kv.Value);

    /// <summary>Runs promtool check metrics on the text; null when promtool is absent (the caller decides whether that is allowed).</summary>
    public string? Promtool()
    {
        string? promtool = Environment.GetEnvironmentVariable("PATH")?.Split(':').Select(d => Path.Combine(d, "promtool")).FirstOrDefault(File.Exists);
        if (promtool is null) return null;
        var start = new ProcessStartInfo(promtool, ["check", "metrics"])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using Process process = Process.Start(start)!;
        process.StandardInput.Write(Text);
        process.StandardInput.Close();
        string output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(60_000), "promtool did not finish");
        return process.ExitCode == 0 ? "" : $"promtool exit {process.ExitCode}: {output}";
    }
}
