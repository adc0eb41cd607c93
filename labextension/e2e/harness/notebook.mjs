// Notebook files for the tests.

/**
 * An nbformat 4.5 notebook with a Python 3 kernelspec.
 * @param {Array<string | {source: string, cell_type?: string}>} cells
 */
export function notebookSource(cells) {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' },
      language_info: { name: 'python' }
    },
    cells: cells.map((cell, index) => {
      const { source, cell_type = 'code' } = typeof cell === 'string' ? { source: cell } : cell;
      const base = { cell_type, id: `cell-${index}`, metadata: {}, source };
      return cell_type === 'code' ? { ...base, outputs: [], execution_count: null } : base;
    })
  };
}
