using System.Text;

namespace Switch.Host.Tests.Reliability;

/// <summary>
/// What the reliability tests tried and what held, written by the tests themselves as they pass: each records its
/// scenario with the counts it actually ran (kills, fuzz cases, fault scenarios), and the run leaves one Markdown
/// table that the README's "What was tried" section is taken from. A test records only after its assertions held,
/// so a row is a claim the run proved. The file is rewritten whole at each record (rows sorted), so parallel test
/// classes never interleave and the same run gives the same file whatever the order.
/// </summary>
public static class ReliabilityReport
{
    /// <summary>Where the report goes: SWITCH_RELIABILITY_REPORT, else beside the test assembly.</summary>
    public static string FilePath { get; } = Environment.GetEnvironmentVariable("SWITCH_RELIABILITY_REPORT")
        is { Length: > 0 } path ? Path.GetFullPath(path) : Path.Combine(AppContext.BaseDirectory, "reliability-report.md");

    /// <summary>A bound on rows: a test that records in a loop by mistake must not grow the file without end.</summary>
    public const int MaxRows = 256;

    private static readonly object Gate = new();
    private static readonly SortedDictionary<(string Area, string Scenario), (string Tried, string Held)> Rows = new();

    /// <summary>
    /// Records one scenario. <paramref name="tried"/> says what was done, with counts ("5 SIGKILLs under load, 3,112
    /// orders"); <paramref name="held"/> what was checked and held ("every acknowledged outcome survived").
    /// </summary>
    public static void Record(string area, string scenario, string tried, string held)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(area);
        ArgumentException.ThrowIfNullOrWhiteSpace(scenario);
        ArgumentException.ThrowIfNullOrWhiteSpace(tried);
        ArgumentException.ThrowIfNullOrWhiteSpace(held);
        lock (Gate)
        {
            if (!Rows.ContainsKey((area, scenario)) && Rows.Count >= MaxRows)
            {
                throw new InvalidOperationException($"reliability report: more than {MaxRows} rows");
            }
            Rows[(area, scenario)] = (tried, held);
            string text = Render();
            string temporary = FilePath + ".tmp";
            File.WriteAllText(temporary, text, new UTF8Encoding(false));
            File.Move(temporary, FilePath, overwrite: true);
        }
    }

    private static string Render()
    {
        var text = new StringBuilder();
        text.Append("| area | scenario | what was tried | what held |\n");
        text.Append("|---|---|---|---|\n");
        foreach (((string area, string scenario), (string tried, string held)) in Rows)
        {
            text.Append($"| {Cell(area)} | {Cell(scenario)} | {Cell(tried)} | {Cell(held)} |\n");
        }
        return text.ToString();
    }

    /// <summary>A table cell: a pipe would split it, a line end would end the row.</summary>
    private static string Cell(string value) => value.Replace("|", "\\|").Replace("\r", " ").Replace("\n", " ");
}
