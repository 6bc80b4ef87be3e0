using ActorSim.Actors.Scenarios;

namespace ActorSim.Host;

/// <summary><c>actorsim scenario FILE...</c>: runs each file through the actors; one line per
/// expectation; exit 0 if all pass, 1 if any fails, 2 if a file is invalid (file:line: field: why).</summary>
public static class ScenarioCommand
{
    public static async Task<int> Execute(string[] args)
    {
        var deterministic = args.Contains("--deterministic");
        var files = args.Where(a => a != "--deterministic").ToArray();
        if (files.Length == 0 || files.Any(f => f.StartsWith('-')))
        {
            Console.Error.WriteLine("actorsim scenario: usage: actorsim scenario [--deterministic] FILE...");
            return 2;
        }
        // Parse every file first: an invalid file runs nothing.
        var scenarios = new List<Scenario>();
        foreach (var f in files)
        {
            try
            {
                scenarios.Add(ScenarioParser.ParseFile(f));
            }
            catch (ScenarioFormatException e)
            {
                Console.Error.WriteLine($"actorsim scenario: {e.Message}");
                return 2;
            }
        }
        var failed = 0;
        foreach (var s in scenarios)
        {
            Console.WriteLine($"scenario {s.Name} ({s.File}, kernel {s.Policy})");
            var r = await ScenarioRunner.RunAsync(s, deterministic, line => Console.WriteLine($"  {line}"));
            var bad = r.Results.Count(x => !x.Passed);
            Console.WriteLine($"  {(bad == 0 ? "passed" : "FAILED")}: {r.Results.Count - bad} of {r.Results.Count} expectations, {r.Events.Count} events");
            if (bad > 0) failed++;
        }
        Console.WriteLine($"{scenarios.Count - failed} scenarios passed, {failed} failed");
        return failed == 0 ? 0 : 1;
    }
}
