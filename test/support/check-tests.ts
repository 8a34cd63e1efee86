/**
 * The test-suite guard `npm test` runs before the tests: every test body must reach an assertion
 * (node:assert), and every skip must go through skipOrFail (./skip-or-fail.ts), so a test can
 * neither pass without checking anything nor vanish silently under CI.
 *
 * It reads the TypeScript sources under test/ with the compiler API. A test body passes when it,
 * or a function it calls that is defined under test/ (followed through imports), calls an assert
 * function. A body that only calls a parameter of an enclosing wrapper (withChannel(title, body))
 * moves the check to the wrapper's callers: each function they pass in must assert. Skips are
 * `t.skip()`, `t.todo()`, `test.skip()`, `it.todo()`, `describe.skip()` and `{ skip }` or `{ todo }`
 * options; only the helper's own file may use them.
 */
import { readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

export interface TestProblem {
  /** Path relative to the checked directory's parent (test/x.test.ts). */
  file: string;
  line: number;
  message: string;
}

export interface CheckOptions {
  /** The one file allowed to skip (the skip-or-fail helper). */
  skipHelper: string;
}

const ASSERT_MODULES = new Set(['node:assert', 'node:assert/strict', 'assert', 'assert/strict']);
const TEST_MODULES = new Set(['node:test', 'test']);
/** node:test exports that take a test body (describe's callback only registers tests). */
const TEST_FUNCTIONS = new Set(['test', 'it', 'default']);
const SUITE_FUNCTIONS = new Set(['describe', 'suite']);
const SKIP_NAMES = new Set(['skip', 'todo']);

/** Every .ts file under `dir`, sorted. */
export function testSources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...testSources(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out.sort();
}

type FunctionNode = ts.FunctionLikeDeclaration;

/** Imports of one file: local names bound to assert functions and to node:test exports. */
interface FileImports {
  assertNames: Set<string>;
  /** local name -> exported name of node:test */
  testNames: Map<string, string>;
}

function importsOf(sf: ts.SourceFile): FileImports {
  const assertNames = new Set<string>();
  const testNames = new Map<string, string>();
  for (const st of sf.statements) {
    if (!ts.isImportDeclaration(st) || !ts.isStringLiteral(st.moduleSpecifier) || !st.importClause || st.importClause.isTypeOnly) continue;
    const from = st.moduleSpecifier.text;
    const isAssert = ASSERT_MODULES.has(from);
    if (!isAssert && !TEST_MODULES.has(from)) continue;
    const bind = (local: string, imported: string) => (isAssert ? assertNames.add(local) : testNames.set(local, imported));
    const clause = st.importClause;
    if (clause.name) bind(clause.name.text, 'default');
    const named = clause.namedBindings;
    if (named && ts.isNamespaceImport(named)) bind(named.name.text, '*');
    if (named && ts.isNamedImports(named)) {
      for (const el of named.elements) if (!el.isTypeOnly) bind(el.name.text, (el.propertyName ?? el.name).text);
    }
  }
  return { assertNames, testNames };
}

/** The leftmost identifier of a.b.c (or a itself). */
function rootIdentifier(e: ts.Expression): ts.Identifier | undefined {
  while (ts.isPropertyAccessExpression(e) || ts.isElementAccessExpression(e)) e = e.expression;
  return ts.isIdentifier(e) ? e : undefined;
}

function isFunctionNode(n: ts.Node): n is FunctionNode {
  return ts.isFunctionDeclaration(n) || ts.isFunctionExpression(n) || ts.isArrowFunction(n) || ts.isMethodDeclaration(n);
}

/** The function a declaration stands for: a function, or a variable/property holding one. */
function functionOf(decl: ts.Declaration): FunctionNode | undefined {
  if (isFunctionNode(decl)) return decl;
  if ((ts.isVariableDeclaration(decl) || ts.isPropertyAssignment(decl)) && decl.initializer && isFunctionNode(decl.initializer)) return decl.initializer;
  return undefined;
}

export function checkTestSources(files: string[], options: CheckOptions): TestProblem[] {
  const absolute = files.map((f) => resolve(f));
  const root = commonDir(absolute);
  const base = dirname(root);
  const inScope = (path: string) => resolve(path).startsWith(root + sep);
  const compilerOptions: ts.CompilerOptions = { noLib: true, types: [], module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, noEmit: true };
  const host = ts.createCompilerHost(compilerOptions);
  const getSourceFile = host.getSourceFile.bind(host);
  // Only the checked sources are read: calls into the project or node_modules are not followed.
  host.getSourceFile = (name, version, onError, create) => (inScope(name) ? getSourceFile(name, version, onError, create) : undefined);
  const program = ts.createProgram(absolute, compilerOptions, host);
  const checker = program.getTypeChecker();
  const sources = absolute.map((f) => program.getSourceFile(f)).filter((sf): sf is ts.SourceFile => sf !== undefined);
  const imports = new Map(sources.map((sf) => [sf.fileName, importsOf(sf)]));
  const helper = resolve(options.skipHelper);
  const problems: TestProblem[] = [];
  const report = (node: ts.Node, message: string) => {
    const sf = node.getSourceFile();
    problems.push({ file: relative(base, sf.fileName).split(sep).join('/'), line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1, message });
  };

  /** Declarations a callee or identifier resolves to (through imports), within the checked files. */
  const declarationsOf = (e: ts.Expression): ts.Declaration[] => {
    const at = ts.isPropertyAccessExpression(e) ? e.name : e;
    let sym = checker.getSymbolAtLocation(at);
    if (sym && sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
    return (sym?.declarations ?? []).filter((d) => inScope(d.getSourceFile().fileName));
  };

  const isAssertCall = (call: ts.CallExpression): boolean => {
    const root = rootIdentifier(call.expression);
    return root !== undefined && (imports.get(call.getSourceFile().fileName)?.assertNames.has(root.text) ?? false);
  };

  const memo = new Map<ts.Node, boolean>();
  /** Whether `fn` calls an assert function, itself or through functions defined in the checked files. */
  const asserts = (fn: ts.Node): boolean => {
    const known = memo.get(fn);
    if (known !== undefined) return known;
    memo.set(fn, false); // recursion guard
    let found = false;
    const visit = (n: ts.Node): void => {
      if (found) return;
      if (ts.isCallExpression(n)) {
        if (isAssertCall(n)) {
          found = true;
          return;
        }
        for (const d of declarationsOf(n.expression)) {
          const f = functionOf(d);
          if (f && f !== fn && asserts(f)) {
            found = true;
            return;
          }
        }
      }
      ts.forEachChild(n, visit);
    };
    ts.forEachChild(fn, visit);
    memo.set(fn, found);
    return found;
  };

  /** The function a test-call argument denotes: inline, or an identifier naming one. */
  const bodyOf = (arg: ts.Expression | undefined): FunctionNode | undefined => {
    if (!arg) return undefined;
    if (isFunctionNode(arg)) return arg;
    if (ts.isIdentifier(arg)) for (const d of declarationsOf(arg)) if (functionOf(d)) return functionOf(d);
    return undefined;
  };

  /** Parameters of enclosing functions that `body` calls: [wrapper, parameter index]. */
  const calledParameters = (body: FunctionNode): Array<[FunctionNode, number]> => {
    const out: Array<[FunctionNode, number]> = [];
    const visit = (n: ts.Node): void => {
      if (ts.isCallExpression(n) && ts.isIdentifier(n.expression)) {
        for (const d of declarationsOf(n.expression)) {
          if (!ts.isParameter(d) || d.parent === body || !isFunctionNode(d.parent)) continue;
          out.push([d.parent, d.parent.parameters.indexOf(d)]);
        }
      }
      ts.forEachChild(n, visit);
    };
    ts.forEachChild(body, visit);
    return out;
  };

  /** Calls of `wrapper` anywhere in the checked files. */
  const callsOf = (wrapper: FunctionNode): ts.CallExpression[] => {
    const calls: ts.CallExpression[] = [];
    const visit = (n: ts.Node): void => {
      if (ts.isCallExpression(n) && declarationsOf(n.expression).some((d) => functionOf(d) === wrapper)) calls.push(n);
      ts.forEachChild(n, visit);
    };
    for (const sf of sources) visit(sf);
    return calls;
  };

  const titleOf = (call: ts.CallExpression): string => {
    const first = call.arguments[0];
    return first && (ts.isStringLiteral(first) || ts.isNoSubstitutionTemplateLiteral(first)) ? `'${first.text}'` : first ? first.getText() : '(untitled)';
  };

  const checkBody = (call: ts.CallExpression) => {
    const body = bodyOf(call.arguments[call.arguments.length - 1]);
    if (!body) return report(call, `test ${titleOf(call)}: its body is not a function this guard can read`);
    if (asserts(body)) return;
    const wrappers = calledParameters(body);
    if (wrappers.length === 0) return report(call, `test ${titleOf(call)}: no assertion in its body`);
    for (const [wrapper, index] of wrappers) {
      for (const site of callsOf(wrapper)) {
        const passed = bodyOf(site.arguments[index]);
        if (!passed || !asserts(passed)) report(site, `test ${titleOf(site)}: the body passed to ${wrapperName(wrapper)} has no assertion`);
      }
    }
  };

  /** Parameters that receive a TestContext (the first parameter of a test body). */
  const contexts = new Set<ts.Declaration>();
  for (const sf of sources) {
    const { testNames } = imports.get(sf.fileName)!;
    const mayskip = resolve(sf.fileName) === helper;
    const testApi = (e: ts.Expression): string | undefined => (ts.isIdentifier(e) ? testNames.get(e.text) : undefined);
    const visit = (n: ts.Node): void => {
      if (ts.isCallExpression(n)) {
        const callee = n.expression;
        const api = testApi(callee);
        // test(...), it(...), t.test(...), test.only(...), it.only(...)
        const isTest =
          (api !== undefined && TEST_FUNCTIONS.has(api)) ||
          (ts.isPropertyAccessExpression(callee) && callee.name.text === 'test' && ts.isIdentifier(callee.expression) && declarationsOf(callee.expression).some((d) => contexts.has(d))) ||
          (ts.isPropertyAccessExpression(callee) && callee.name.text === 'only' && TEST_FUNCTIONS.has(testApi(callee.expression) ?? ''));
        const isSuite = (api !== undefined && SUITE_FUNCTIONS.has(api)) || (ts.isPropertyAccessExpression(callee) && callee.name.text === 'only' && SUITE_FUNCTIONS.has(testApi(callee.expression) ?? ''));
        if (isTest) {
          checkBody(n);
          // Its first parameter is a test context: t.test(...) inside makes subtests.
          const context = bodyOf(n.arguments[n.arguments.length - 1])?.parameters[0];
          if (context) contexts.add(context);
        }
        if (!mayskip && ts.isPropertyAccessExpression(callee) && SKIP_NAMES.has(callee.name.text) && ts.isIdentifier(callee.expression)) {
          report(n, `${callee.getText()}(): skips go through skipOrFail (test/support/skip-or-fail.ts), which fails under CI`);
        }
        if (!mayskip && (isTest || isSuite)) {
          for (const arg of n.arguments) {
            if (!ts.isObjectLiteralExpression(arg)) continue;
            for (const p of arg.properties) {
              if (p.name && ts.isIdentifier(p.name) && SKIP_NAMES.has(p.name.text)) report(p, `test ${titleOf(n)}: a '${p.name.text}' option; skips go through skipOrFail (test/support/skip-or-fail.ts), which fails under CI`);
            }
          }
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return problems.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
}

function wrapperName(fn: FunctionNode): string {
  if (fn.name && ts.isIdentifier(fn.name)) return fn.name.text;
  const parent = fn.parent;
  return ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name) ? parent.name.text : 'its wrapper';
}

function commonDir(paths: string[]): string {
  let dir = dirname(paths[0] ?? '.');
  while (!paths.every((p) => p === dir || p.startsWith(dir + sep))) dir = dirname(dir);
  return dir;
}

/**
 * `node dist/test/support/check-tests.js [dir]`: checks `dir` (default: test/ of this checkout),
 * whose support/skip-or-fail.ts is the skip helper; prints each problem, exits 1 on any.
 */
function main(dir?: string): void {
  const testDir = dir ? resolve(dir) : fileURLToPath(new URL('../../../test', import.meta.url));
  const files = testSources(testDir);
  const problems = checkTestSources(files, { skipHelper: join(testDir, 'support', 'skip-or-fail.ts') });
  for (const p of problems) process.stderr.write(`${p.file}:${p.line}: ${p.message}\n`);
  if (problems.length > 0) {
    process.stderr.write(`check-tests: ${problems.length} problem(s) in ${testDir}\n`);
    process.exitCode = 1;
  } else process.stdout.write(`check-tests: every test body asserts, every skip goes through skipOrFail (${files.length} files)\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main(process.argv[2]);
