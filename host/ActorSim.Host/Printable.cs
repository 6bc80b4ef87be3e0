namespace ActorSim.Host;

/// <summary>Text from a file or the database as the console shows it: its control characters written as
/// escapes ("\u001b"), so a scenario's name cannot clear the screen, move the cursor or break a table's
/// line — it was printed as written, escape sequences included, by <c>scenario</c>, <c>runs</c> and
/// <c>summary</c>.</summary>
public static class Printable
{
    public static string Of(string text) =>
        text.Any(char.IsControl) ? string.Concat(text.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString())) : text;
}
