using System.Text;
using Switch.Contracts.V1;
using Switch.Journal;

namespace Switch.Host.Admin;

/// <summary>
/// The member report's daily CSV file beside the clearing files: clearing/member-report-YYYY-MM-DD.csv (the switch's
/// day zone), written once the day has ended by event time (an output stamped on a later day has been seen), durably
/// (temporary, fsync, rename, fsync of the directory). Its content is derived from the journal, so a file rewritten
/// after a crash is the same file; days whose file exists are not written again.
/// </summary>
public sealed class MemberReportFiles(MemberStats stats, MemberReports reports, string dataDirectory)
{
    public const string Prefix = "member-report-";
    /// <summary>How often ended days are looked for (a day's file appears within this after its end is seen).</summary>
    public const int CheckIntervalMs = 1_000;

    public static string PathOf(string dataDirectory, string day) => Path.Combine(dataDirectory, "clearing", $"{Prefix}{day}.csv");

    /// <summary>Writes the files of every ended day kept and not yet written; the paths written.</summary>
    public List<string> WriteEndedDays()
    {
        var written = new List<string>();
        if (stats.NewestHour is not { } newest || stats.OldestHour is not { } oldest) return written;
        long today = reports.DayStartHourOf(newest);
        for (long day = reports.DayStartHourOf(oldest); day < today; day += 24)
        {
            string path = PathOf(dataDirectory, reports.DayText(day));
            if (File.Exists(path)) continue;
            List<MemberRow> rows = reports.Day(day);
            if (rows.Count == 0) continue;
            DirectorySync.WriteFile(path, Encoding.UTF8.GetBytes(MemberReportCsv.Document(rows)));
            written.Add(path);
        }
        return written;
    }

    public async Task RunAsync(Action<Exception> alert, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(CheckIntervalMs));
        do
        {
            try { WriteEndedDays(); }
            catch (IOException e) { alert(e); } // a full disk: said, and tried again next time
        }
        while (await AdminService.WaitAsync(timer, stop));
    }
}
