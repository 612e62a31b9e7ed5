using Switch.Engine.Pipeline;

namespace Switch.Engine.Tests.Pipeline;

/// <summary>The crash-point test hook's setting: exact forms only, anything else refused naming the variable.</summary>
public class JournalCrashPointTests
{
    [Theory]
    [InlineData("before-commit:1", JournalCrashMoment.BeforeCommit, 1L)]
    [InlineData("after-commit:2500", JournalCrashMoment.AfterCommit, 2_500L)]
    public void The_two_moments_parse_and_print_back(string text, JournalCrashMoment moment, long record)
    {
        JournalCrashPoint point = JournalCrashPoint.Parse(text);
        Assert.Equal(new JournalCrashPoint(moment, record), point);
        Assert.Equal(text, point.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("before-commit")]
    [InlineData("before-commit:0")]
    [InlineData("before-commit:-5")]
    [InlineData("before-commit:+5")]
    [InlineData("before-commit: 5")]
    [InlineData("during-commit:5")]
    [InlineData("after-commit:5:6")]
    [InlineData("after-commit:99999999999999999999")]
    public void Anything_else_is_refused_naming_the_variable(string text)
    {
        ArgumentException e = Assert.Throws<ArgumentException>(() => JournalCrashPoint.Parse(text));
        Assert.StartsWith("SWITCH_TEST_CRASH_POINT: expected before-commit:N or after-commit:N", e.Message);
        Assert.Contains($"got '{text}'", e.Message);
    }
}
