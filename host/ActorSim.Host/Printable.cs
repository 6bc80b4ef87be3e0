namespace ActorSim.Host;

/// <summary>Text from a file or the database as the console shows it: its control characters written as
/// escapes ("\u001b"), so a scenario's name, or a value an error quotes from a scenario or an event log,
/// cannot clear the screen, move the cursor or break a table's line — they were printed as written,
/// escape sequences included, by <c>scenario</c>, <c>runs</c>, <c>summary</c> and the errors of
/// <c>scenario</c>, <c>import</c>, <c>replay</c> and <c>explain</c>.</summary>
public static class Printable
{
    public static string Of(string text) =>
        text.Any(char.IsControl) ? string.Concat(text.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString())) : text;
}
