import { describe, expect, it } from 'vitest'
import { createViewSettings, followDetail, handleKey, parseKeys, type KeyContext } from '../src/cli/live-input'
import type { HttpTask } from '../src/task/http-task'

const TASKS: Record<string, HttpTask> = { 'a:1': { task_id: 1 }, 'a:2': { task_id: 2 }, 'c:3': { task_id: 3 } }

const CONTEXT: KeyContext = {
  rowKeys: Object.keys(TASKS),
  findTask: (key) => TASKS[key],
  sortColumns: ['Duration', 'Path', 'IP'],
  pageSize: 2,
}

describe('parseKeys', () => {
  it('names keys and escape sequences', () => {
    expect(parseKeys('q\x1b[A\x1b[B\x1bOA\r\x7f\x03\x1b[5~\x1b[6~/')).toEqual([
      'q',
      'up',
      'down',
      'up',
      'enter',
      'backspace',
      'ctrl-c',
      'pageup',
      'pagedown',
      '/',
    ])
  })

  it('reads a lone ESC as the Escape key and skips unknown sequences', () => {
    expect(parseKeys('\x1b')).toEqual(['escape'])
    expect(parseKeys('\x1b\x1b[A')).toEqual(['escape', 'up'])
    expect(parseKeys('\x1b[200~x')).toEqual(['x'])
  })

  it('keeps characters outside the Basic Multilingual Plane whole', () => {
    expect(parseKeys('🚀é')).toEqual(['🚀', 'é'])
  })
})

describe('handleKey', () => {
  it('quits on q and Ctrl-C', () => {
    expect(handleKey(createViewSettings(), 'q', CONTEXT)).toBe('quit')
    expect(handleKey(createViewSettings(), 'ctrl-c', CONTEXT)).toBe('quit')
  })

  it('toggles pause, routes and grouping', () => {
    const settings = createViewSettings()
    handleKey(settings, 'p', CONTEXT)
    handleKey(settings, 't', CONTEXT)
    expect(settings.paused).toBe(true)
    expect(settings.showRoutes).toBe(true)
    const groupings = ['h', 'h', 'h'].map(() => {
      handleKey(settings, 'h', CONTEXT)
      return settings.grouping
    })
    expect(groupings).toEqual(['host', 'process', 'none'])
  })

  it('cycles the sort column, then back to the default order', () => {
    const settings = createViewSettings()
    const columns = [1, 2, 3, 4].map(() => {
      handleKey(settings, 's', CONTEXT)
      return settings.sortColumn
    })
    expect(columns).toEqual(['Duration', 'Path', 'IP', undefined])
    handleKey(settings, 'r', CONTEXT)
    expect(settings.sortReversed).toBe(true)
  })

  it('edits a filter: Enter applies, Esc clears', () => {
    const settings = createViewSettings()
    for (const key of ['/', 'a', 'p', 'x', 'backspace', 'i', 'enter']) handleKey(settings, key, CONTEXT)
    expect(settings.filterText).toBe('api')
    expect(settings.filterDraft).toBeUndefined()
    // Keys typed into the filter do not act as commands.
    handleKey(settings, '/', CONTEXT)
    expect(handleKey(settings, 'q', CONTEXT)).toBe('changed')
    handleKey(settings, 'escape', CONTEXT)
    expect(settings.filterText).toBe('')
  })

  it('moves the selection and opens and closes the detail pane', () => {
    const settings = createViewSettings()
    handleKey(settings, 'down', CONTEXT)
    handleKey(settings, 'down', CONTEXT)
    expect(settings.selectedKey).toBe('a:2')
    handleKey(settings, 'end', CONTEXT)
    expect(settings.selectedKey).toBe('c:3')
    handleKey(settings, 'pageup', CONTEXT)
    expect(settings.selectedKey).toBe('a:1')

    handleKey(settings, 'enter', CONTEXT)
    expect(settings.detail).toEqual({ task_id: 1 })
    handleKey(settings, 'down', CONTEXT)
    expect(settings.detailScroll).toBe(1)
    handleKey(settings, 'escape', CONTEXT)
    expect(settings.detail).toBeUndefined()
  })

  it('shows the help until the next key', () => {
    const settings = createViewSettings()
    handleKey(settings, '?', CONTEXT)
    expect(settings.showHelp).toBe(true)
    handleKey(settings, 'x', CONTEXT)
    expect(settings.showHelp).toBe(false)
  })

  it('scrolls the help with the arrows', () => {
    const settings = createViewSettings()
    handleKey(settings, '?', CONTEXT)
    handleKey(settings, 'down', CONTEXT)
    expect(settings.helpScroll).toBe(1)
    handleKey(settings, 'pagedown', CONTEXT)
    expect(settings.helpScroll).toBe(1 + CONTEXT.pageSize)
    handleKey(settings, 'home', CONTEXT)
    expect(settings.helpScroll).toBe(0)
    expect(settings.showHelp).toBe(true)
    handleKey(settings, 'x', CONTEXT)
    expect(settings.showHelp).toBe(false)
  })
})

describe('followDetail', () => {
  const ACTIVE: HttpTask = { task_id: 'u1', host_name: 'web-1', process_id: 7, ended_at: null, path: '/upload' }
  const TASK_KEY = 'id:u1@web-1/7/'

  /** Returns settings with the detail pane open on `task`, selected as row `selectedKey`. */
  function openOn(task: HttpTask, selectedKey: string) {
    return { ...createViewSettings(), detail: task, selectedKey, detailScroll: 3 }
  }

  it('shows a newer copy of an active record', () => {
    const settings = openOn(ACTIVE, `a:${TASK_KEY}`)
    const newer: HttpTask = { ...ACTIVE, tags: { stage: 'two' } }
    const requestedKeys: string[] = []
    const findLatestTask = (key: string): HttpTask => {
      requestedKeys.push(key)
      return newer
    }

    expect(followDetail(settings, findLatestTask)).toBe(true)
    expect(requestedKeys).toEqual([TASK_KEY])
    expect(settings.detail).toBe(newer)
    expect(settings.selectedKey).toBe(`a:${TASK_KEY}`)
    expect(settings.detailScroll).toBe(3)
  })

  it('moves to the completed record once the request ends', () => {
    const settings = openOn(ACTIVE, `a:${TASK_KEY}`)
    const ended: HttpTask = { ...ACTIVE, ended_at: '2026-12-04T15:00:00.000Z', status_code: 201 }

    expect(followDetail(settings, () => ended)).toBe(true)
    expect(settings.detail).toBe(ended)
    expect(settings.selectedKey).toBe(`c:${TASK_KEY}#2026-12-04T15:00:00.000Z`)
    // The completed record is final: a later call leaves it.
    expect(followDetail(settings, () => ACTIVE)).toBe(false)
    expect(settings.detail).toBe(ended)
  })

  it('keeps the shown record when no copy is found', () => {
    const settings = openOn(ACTIVE, `a:${TASK_KEY}`)
    expect(followDetail(settings, () => undefined)).toBe(false)
    expect(settings.detail).toBe(ACTIVE)
    expect(settings.selectedKey).toBe(`a:${TASK_KEY}`)
  })

  it('does nothing while the pane is closed', () => {
    const settings = { ...createViewSettings(), selectedKey: `a:${TASK_KEY}` }
    expect(followDetail(settings, () => ACTIVE)).toBe(false)
    expect(settings.detail).toBeUndefined()
  })
})
