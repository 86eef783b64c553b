import { describe, it, expect } from 'vitest'
import { subcommandCommand } from '../../src/cli/subcommands.js'
import { commandHelp, parseCommandArgs } from '../../src/cli/args.js'
import type { CommandContext } from '../../src/cli/command.js'
import { Output } from '../../src/cli/output.js'

/** A command of two subcommands that records what ran */
function fixture (): { ran: Array<[string, string[]]>, run: (argv: string[]) => Promise<number | void>, help: () => string } {
  const ran: Array<[string, string[]]> = []
  const command = subcommandCommand({
    name: 'demo',
    notes: ['Exit codes: 0 ok, 2 bad command line, 3 refused.'],
    options: {
      loud: { type: 'boolean', description: 'say: shout' },
      times: { type: 'string', arg: '<n>', description: 'say/repeat: how often' }
    }
  }, [
    {
      name: 'say',
      usage: '<word> [--loud] [--times n]',
      summary: 'print a word',
      positionals: 1,
      options: ['loud', 'times'],
      async run (_context, rest) { ran.push(['say', rest]) }
    },
    {
      name: 'repeat-everything-you-hear',
      usage: '<word>… [--times n]',
      summary: ['print words again', 'and again'],
      positionals: [1, 3],
      options: ['times'],
      async run (_context, rest) {
        ran.push(['repeat', rest])
        return 3
      }
    }
  ])
  const run = async (argv: string[]): Promise<number | void> => {
    const context: CommandContext = { args: parseCommandArgs(command.spec, argv), dataDir: '/nonexistent', out: new Output(true), signal: new AbortController().signal }
    return command.run(context)
  }
  return { ran, run, help: () => commandHelp(command.spec, 'A demo.') }
}

describe('table-driven subcommands', () => {
  it('runs the named subcommand with the positionals after its name, and passes its exit code on', async () => {
    const { ran, run } = fixture()
    expect(await run(['say', 'hi', '--loud', '--json'])).toBeUndefined()
    expect(await run(['repeat-everything-you-hear', 'a', 'b', '--times', '2'])).toBe(3)
    expect(ran).toEqual([['say', ['hi']], ['repeat', ['a', 'b']]])
  })

  it('refuses, as usage errors naming the problem, a missing or unknown subcommand, a wrong argument count and another subcommand\'s option', async () => {
    const { ran, run } = fixture()
    const cases: Array<[string[], RegExp]> = [
      [[], /molt demo needs a subcommand: say or repeat-everything-you-hear \(see molt demo --help\)/],
      [['shout'], /unknown subcommand "shout" of molt demo: say or repeat-everything-you-hear/],
      [['say'], /missing argument: molt demo say <word>/],
      [['say', 'a', 'b'], /unexpected argument "b": molt demo say <word>/],
      [['repeat-everything-you-hear', '1', '2', '3', '4'], /unexpected argument "4"/],
      [['repeat-everything-you-hear', 'a', '--loud'], /--loud is not an option of molt demo repeat-everything-you-hear \(it is for say\)/]
    ]
    for (const [argv, message] of cases) {
      await expect(run(argv), argv.join(' ')).rejects.toMatchObject({ name: 'UsageError', message: expect.stringMatching(message) })
    }
    expect(ran).toEqual([])
  })

  it('lists the table in the help, a long usage with its summary on the next lines', () => {
    const help = fixture().help()
    expect(help).toContain('Usage: molt demo <say|repeat-everything-you-hear> … [options]')
    expect(help).toMatch(/molt demo say <word> \[--loud\] \[--times n\]\s+print a word/)
    expect(help).toMatch(/molt demo repeat-everything-you-hear <word>… \[--times n\]\n\s{33}print words again\n\s{33}and again/)
    expect(help).toContain('Exit codes: 0 ok, 2 bad command line, 3 refused.')
  })
})
